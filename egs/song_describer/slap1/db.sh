# Where each corpus lies on this machine (the environment wins over the defaults here).
# SONG_DESCRIBER: a directory with song_describer.csv and audio/ (audio/00/18500.2min.mp3, ...); when it lacks
# them, stage 1 fetches them there (local/download.sh: the Zenodo release, README.md).
SONG_DESCRIBER=${SONG_DESCRIBER:-downloads/song_describer}
