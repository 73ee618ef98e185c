#!/usr/bin/env bash
# Stage 1 of openmic: data/{train,valid,test} from ${OPENMIC}. Options of the preparation go after
# (python -m espnet2_slap.corpora.openmic --help), e.g. local/data.sh --threshold 0.5 --valid_percent 10
set -euo pipefail
. ./db.sh
[ -n "${OPENMIC}" ] || { echo "local/data.sh: set OPENMIC in db.sh or the environment" >&2; exit 1; }
local/download.sh  # fetches the corpus when it is not all there (README.md); at once when it is
python -m espnet2_slap.corpora.openmic --openmic_dir "${OPENMIC}" "$@"
