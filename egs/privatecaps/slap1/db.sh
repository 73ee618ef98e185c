# Where each corpus lies on this machine (the environment wins over the defaults here).
# PRIVATECAPS: a directory with metadata.csv (or metadata.jsonl / metadata.tsv) whose audio paths are relative to it.
# Your own collection: this recipe fetches nothing.
PRIVATECAPS=${PRIVATECAPS:-}
