#!/usr/bin/env bash
# Stage 1 of gtzan: data/{train,valid,test} from ${GTZAN} with the fault-filtered split (torchaudio's lists; see
# README.md), or the lists of --split_dir DIR. Options of the preparation go after
# (python -m espnet2_slap.corpora.gtzan --help).
set -euo pipefail
. ./db.sh
[ -n "${GTZAN}" ] || { echo "local/data.sh: set GTZAN in db.sh or the environment" >&2; exit 1; }
local/download.sh  # fetches the corpus when it is not all there (README.md); at once when it is
python -m espnet2_slap.corpora.gtzan --gtzan_dir "${GTZAN}" "$@"
