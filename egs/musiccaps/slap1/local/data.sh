#!/usr/bin/env bash
# Stage 1 of musiccaps: data/{train,valid,test} from ${MUSICCAPS}/musiccaps-public.csv and ${MUSICCAPS}/audio.
# Options of the preparation go after (python -m espnet2_slap.corpora.musiccaps --help), e.g.
#   local/data.sh --sets test --audio_kind videos --audio_dir /data/yt
set -euo pipefail
. ./db.sh
[ -n "${MUSICCAPS}" ] || { echo "local/data.sh: set MUSICCAPS in db.sh or the environment" >&2; exit 1; }
local/download.sh  # the CSV and the clips when they are not there (README.md); at once when they are
python -m espnet2_slap.corpora.musiccaps --csv "${MUSICCAPS}/musiccaps-public.csv" --audio_dir "${MUSICCAPS}/audio" "$@"
