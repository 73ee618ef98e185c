#!/usr/bin/env bash
# Fetches MusicCaps into ${MUSICCAPS} (db.sh; README.md): musiccaps-public.csv from the Hub dataset
# google/MusicCaps, then the 10-s clips from YouTube with yt-dlp (pip install yt-dlp; it needs ffmpeg) at
# start_s-end_s into ${MUSICCAPS}/audio/<ytid>.wav, in --nj jobs through ${train_cmd} (cmd.sh). Videos that
# cannot be fetched are listed in ${MUSICCAPS}/unavailable.tsv (ytid, CSV line, yt-dlp's message) and counted,
# never a stop. A finished pass leaves ${MUSICCAPS}/.clips.done; a run cut short continues with what is
# missing, and --again true tries the clips without audio again (only those). An audio/ dir filled otherwise
# (no .clips.started) is left alone unless --again true.
#   local/download.sh [--nj 4] [--again false]
# Offline (SLAP_OFFLINE=1 or HF_HUB_OFFLINE=1): nothing is fetched; the CSV must be there, and the clips that
# are not are left out by stage 1 (listed in data/local/musiccaps.missing).
set -euo pipefail
. ./path.sh
. ./cmd.sh
. ./db.sh
nj=4
again=false
while [ $# -gt 0 ]; do
    case "$1" in
        --nj) nj=$2; shift 2 ;;
        --again) again=$2; shift 2 ;;
        *) echo "local/download.sh: unknown option $1 (--nj N, --again true|false)" >&2; exit 1 ;;
    esac
done
[ -n "${MUSICCAPS}" ] || { echo "local/download.sh: set MUSICCAPS in db.sh or the environment" >&2; exit 1; }
python -m espnet2_slap.bin.slap_fetch corpus musiccaps --root "${MUSICCAPS}"
if python -c "import sys; from espnet2_slap.utils.download import offline_mode; sys.exit(not offline_mode())"; then
    echo "local/download.sh: offline: no clip is fetched; stage 1 leaves out the clips that are not in ${MUSICCAPS}/audio"
    exit 0
fi
if [ "${again}" != true ]; then
    if [ -f "${MUSICCAPS}/.clips.done" ]; then
        echo "local/download.sh: the clips were fetched before (${MUSICCAPS}/.clips.done); local/download.sh --again true tries the missing ones again"
        exit 0
    elif [ -d "${MUSICCAPS}/audio" ] && [ ! -f "${MUSICCAPS}/.clips.started" ]; then
        echo "local/download.sh: ${MUSICCAPS}/audio holds clips fetched otherwise: none fetched (local/download.sh --again true fetches the missing ones)"
        exit 0
    fi
fi
for tool in yt-dlp ffmpeg; do
    command -v "${tool}" > /dev/null || { echo "local/download.sh: ${tool} is not installed, and the clips need it: pip install 'yt-dlp[default]' (in tools/venv or on PATH), and apt-get install ffmpeg" >&2; exit 1; }
done
log=${MUSICCAPS}/log
mkdir -p "${log}"
rm -f "${log}"/unavailable.*.tsv
touch "${MUSICCAPS}/.clips.started"
${train_cmd} JOB=1:"${nj}" "${log}/fetch.JOB.log" python -m espnet2_slap.bin.slap_fetch clips \
    --csv "${MUSICCAPS}/musiccaps-public.csv" --audio_dir "${MUSICCAPS}/audio" --job JOB --num_jobs "${nj}" \
    --unavailable "${log}/unavailable.JOB.tsv"
cat "${log}"/unavailable.*.tsv > "${MUSICCAPS}/unavailable.tsv"
touch "${MUSICCAPS}/.clips.done"
echo "local/download.sh: $(wc -l < "${MUSICCAPS}/unavailable.tsv") clips could not be fetched (listed in ${MUSICCAPS}/unavailable.tsv; logs in ${log}); stage 1 leaves them out"
