#!/usr/bin/env bash
# Stage 1 of mtat: data/{train,valid,test} from ${MTAT}/annotations_final.csv and ${MTAT}/mp3. Options of the
# preparation go after (python -m espnet2_slap.corpora.mtat --help), e.g. local/data.sh --keep_untagged true
set -euo pipefail
. ./db.sh
[ -n "${MTAT}" ] || { echo "local/data.sh: set MTAT in db.sh or the environment" >&2; exit 1; }
local/download.sh  # fetches the corpus when it is not all there (README.md); at once when it is
python -m espnet2_slap.corpora.mtat --annotations "${MTAT}/annotations_final.csv" --audio_dir "${MTAT}/mp3" "$@"
