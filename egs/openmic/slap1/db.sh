# Where each corpus lies on this machine (the environment wins over the defaults here).
# OPENMIC: the openmic-2018 directory (openmic-2018.npz, class-map.json, partitions/, audio/); when it lacks
# them, stage 1 fetches them there (local/download.sh: the Zenodo release, README.md).
OPENMIC=${OPENMIC:-downloads/openmic-2018}
