#!/usr/bin/env bash
# Stage 1 of song_describer: data/test (and data/{train,valid} with --train true) from
# ${SONG_DESCRIBER}/song_describer.csv and ${SONG_DESCRIBER}/audio. Options of the preparation go after
# (python -m espnet2_slap.corpora.song_describer --help), e.g. local/data.sh --subset all
set -euo pipefail
. ./db.sh
[ -n "${SONG_DESCRIBER}" ] || { echo "local/data.sh: set SONG_DESCRIBER in db.sh or the environment" >&2; exit 1; }
local/download.sh  # fetches the corpus when it is not all there (README.md); at once when it is
python -m espnet2_slap.corpora.song_describer --csv "${SONG_DESCRIBER}/song_describer.csv" \
    --audio_dir "${SONG_DESCRIBER}/audio" "$@"
