# Where each corpus lies on this machine (the environment wins over the defaults here).
# SONG_DESCRIBER: a directory with song_describer.csv and audio/ (audio/00/18500.2min.mp3, ...).
SONG_DESCRIBER=${SONG_DESCRIBER:-}
