# Where each corpus lies on this machine (the environment wins over the defaults here).
# MUSICCAPS: a directory with musiccaps-public.csv and audio/ (the files you fetched, <ytid>.wav|flac|mp3|ogg).
MUSICCAPS=${MUSICCAPS:-}
