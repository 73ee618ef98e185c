# Where each corpus lies on this machine (the environment wins over the defaults here).
# OPENMIC: the openmic-2018 directory (openmic-2018.npz, class-map.json, partitions/, audio/).
OPENMIC=${OPENMIC:-}
