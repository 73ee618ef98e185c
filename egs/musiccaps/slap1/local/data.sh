#!/usr/bin/env bash
# Stage 1 of musiccaps: data/{train,valid,test} from ${MUSICCAPS}/musiccaps-public.csv and the clips in
# ${MUSICCAPS}/audio; with --audio_dir DIR, the clips in DIR first, then those in ${MUSICCAPS}/audio (if any).
# local/download.sh (given the same --audio_dir) first fetches what is in neither, where it may (README.md).
# Options of the preparation go after (python -m espnet2_slap.corpora.musiccaps --help), e.g.
#   local/data.sh --sets test --audio_kind videos --audio_dir /data/yt
set -euo pipefail
. ./db.sh
[ -n "${MUSICCAPS}" ] || { echo "local/data.sh: set MUSICCAPS in db.sh or the environment" >&2; exit 1; }
audio_dir=""  # --audio_dir DIR: the clips are (also) there; the last one given counts
opts=()
while [ $# -gt 0 ]; do
    case "$1" in
        --audio_dir)
            [ $# -ge 2 ] || { echo "local/data.sh: --audio_dir needs a directory" >&2; exit 1; }
            audio_dir=$2; shift 2 ;;
        --audio_dir=*) audio_dir=${1#--audio_dir=}; shift ;;
        *) opts+=("$1"); shift ;;
    esac
done
download_opts=()
if [ -n "${audio_dir}" ]; then
    [ -d "${audio_dir}" ] || { echo "local/data.sh: --audio_dir ${audio_dir} is not a directory" >&2; exit 1; }
    download_opts=(--audio_dir "${audio_dir}")
fi
local/download.sh "${download_opts[@]}"  # the CSV, and the missing clips where it may (README.md); at once when there
dirs=("${MUSICCAPS}/audio")
if [ -n "${audio_dir}" ]; then
    dirs=("${audio_dir}")
    # and ${MUSICCAPS}/audio when it is there and another directory (the clips local/download.sh fetched)
    if [ -d "${MUSICCAPS}/audio" ] && [ "$(cd "${MUSICCAPS}/audio" && pwd -P)" != "$(cd "${audio_dir}" && pwd -P)" ]
    then
        dirs+=("${MUSICCAPS}/audio")
    fi
fi
python -m espnet2_slap.corpora.musiccaps --csv "${MUSICCAPS}/musiccaps-public.csv" --audio_dir "${dirs[@]}" "${opts[@]}"
