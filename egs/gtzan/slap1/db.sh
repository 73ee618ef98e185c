# Where each corpus lies on this machine (the environment wins over the defaults here).
# GTZAN: the directory holding genres/<genre>/<genre>.000NN.wav (or genres_original/).
GTZAN=${GTZAN:-}
