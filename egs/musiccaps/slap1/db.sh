# Where each corpus lies on this machine (the environment wins over the defaults here).
# MUSICCAPS: a directory with musiccaps-public.csv and audio/ (the clips, <ytid>.wav|flac|mp3|ogg); when it lacks
# them, stage 1 fetches them there (local/download.sh: the CSV, and the clips with yt-dlp; README.md). Clips kept
# elsewhere: ./run.sh --local_data_opts "--audio_dir DIR" (looked for there first, then in audio/).
MUSICCAPS=${MUSICCAPS:-downloads/musiccaps}
