# Where each corpus lies on this machine (the environment wins over the defaults here).
# GTZAN: the directory holding genres/<genre>/<genre>.000NN.wav (or .au, or genres_original/); when it lacks
# them, stage 1 fetches them there (local/download.sh: genres.tar.gz of the Marsyas site, README.md).
GTZAN=${GTZAN:-downloads/gtzan}
