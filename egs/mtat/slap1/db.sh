# Where each corpus lies on this machine (the environment wins over the defaults here).
# MTAT: a directory with annotations_final.csv and mp3/ (0/ ... f/ as in mp3_path); when it lacks them, stage 1
# fetches them there (local/download.sh: the MIRG release, README.md).
MTAT=${MTAT:-downloads/mtat}
