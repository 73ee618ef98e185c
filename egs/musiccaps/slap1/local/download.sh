#!/usr/bin/env bash
# Fetches MusicCaps into ${MUSICCAPS} (db.sh; README.md): musiccaps-public.csv from the Hub dataset
# google/MusicCaps, then the 10-s clips from YouTube with yt-dlp (pip install yt-dlp; it needs ffmpeg) at
# start_s-end_s into ${MUSICCAPS}/audio/<ytid>.wav, in --nj jobs through ${train_cmd} (cmd.sh). A clip is there
# when a file <ytid>.wav|flac|mp3|ogg is anywhere below ${MUSICCAPS}/audio or --audio_dir DIR (clips kept
# elsewhere: they are only read; stage 1 prepares them, local/data.sh --audio_dir DIR); when all are there, nothing
# is fetched and yt-dlp is not needed. Videos that cannot be fetched are listed in ${MUSICCAPS}/unavailable.tsv
# (ytid, CSV line, yt-dlp's message) and counted, never a stop. A finished pass leaves ${MUSICCAPS}/.clips.done; a
# run cut short continues with what is missing, and --again true tries the clips without audio again (only those).
# Clips put there otherwise (an audio/ dir without .clips.started, or --audio_dir) are left alone unless
# --again true.
#   local/download.sh [--nj 4] [--again false] [--audio_dir DIR]
# Offline (SLAP_OFFLINE=1 or HF_HUB_OFFLINE=1): nothing is fetched; the CSV must be there, and the clips that
# are not are left out by stage 1 (listed in data/local/musiccaps.missing).
set -euo pipefail
. ./path.sh
. ./cmd.sh
. ./db.sh
nj=4
again=false
audio_dir=""
while [ $# -gt 0 ]; do
    case "$1" in
        --nj) nj=$2; shift 2 ;;
        --again) again=$2; shift 2 ;;
        --audio_dir) audio_dir=$2; shift 2 ;;
        *) echo "local/download.sh: unknown option $1 (--nj N, --again true|false, --audio_dir DIR)" >&2; exit 1 ;;
    esac
done
[ -n "${MUSICCAPS}" ] || { echo "local/download.sh: set MUSICCAPS in db.sh or the environment" >&2; exit 1; }
audio=${MUSICCAPS}/audio  # where the clips are fetched to
looked=("${audio}")       # where they are looked for
in_any=${audio}
in_none="not in ${audio}"
if [ -n "${audio_dir}" ]; then
    [ -d "${audio_dir}" ] || { echo "local/download.sh: --audio_dir ${audio_dir} is not a directory" >&2; exit 1; }
    if [ ! -d "${audio}" ] || [ "$(cd "${audio}" && pwd -P)" != "$(cd "${audio_dir}" && pwd -P)" ]; then
        looked=("${audio_dir}" "${audio}")
        in_any="${audio_dir} or ${audio}"
        in_none="in neither ${audio_dir} nor ${audio}"
    fi
fi
csv=${MUSICCAPS}/musiccaps-public.csv
python -m espnet2_slap.bin.slap_fetch corpus musiccaps --root "${MUSICCAPS}"
counts=$(python -m espnet2_slap.bin.slap_fetch missing --csv "${csv}" --audio_dir "${looked[@]}")
read -r n_missing n_clips <<< "${counts}"
if [ "${n_missing}" -eq 0 ]; then
    echo "local/download.sh: all ${n_clips} clips of ${csv} are in ${in_any}: nothing to fetch"
    exit 0
fi
missing="${n_missing} of the ${n_clips} clips of ${csv} are ${in_none} (no <ytid>.wav|flac|mp3|ogg anywhere below)"
if python -c "import sys; from espnet2_slap.fetch.download import offline_mode; sys.exit(not offline_mode())"; then
    echo "local/download.sh: offline: no clip is fetched; ${missing}: stage 1 leaves them out"
    exit 0
fi
again_cmd="local/download.sh${audio_dir:+ --audio_dir ${audio_dir}} --again true"
if [ "${again}" != true ]; then
    if [ -f "${MUSICCAPS}/.clips.done" ]; then
        echo "local/download.sh: the clips were fetched before (${MUSICCAPS}/.clips.done); ${missing}: ${again_cmd} tries them again"
        exit 0
    elif { [ -d "${audio}" ] || [ -n "${audio_dir}" ]; } && [ ! -f "${MUSICCAPS}/.clips.started" ]; then
        echo "local/download.sh: none fetched: the clips in ${in_any} were put there otherwise (no ${MUSICCAPS}/.clips.started); ${missing}: stage 1 leaves them out (${again_cmd} fetches them into ${audio})"
        exit 0
    fi
fi
absent=()
for tool in yt-dlp ffmpeg; do
    command -v "${tool}" > /dev/null || absent+=("${tool}")
done
if [ "${#absent[@]}" -gt 0 ]; then
    not_installed="${absent[0]} is"
    [ "${#absent[@]}" -eq 1 ] || not_installed="yt-dlp and ffmpeg are"
    echo "local/download.sh: ${missing}, and fetching them needs yt-dlp and ffmpeg, but ${not_installed}" \
         "not installed. Either install them (pip install 'yt-dlp[default]' in tools/venv or on PATH;" \
         "apt-get install ffmpeg) and run again (the clips go to ${audio}), or put the clips below ${looked[0]}," \
         "or go on without them: SLAP_OFFLINE=1 (stage 1 leaves them out, listed in data/local/musiccaps.missing)" >&2
    exit 1
fi
found_in=()
[ "${#looked[@]}" -eq 1 ] || found_in=(--found_in "${audio_dir}")
log=${MUSICCAPS}/log
mkdir -p "${log}"
rm -f "${log}"/unavailable.*.tsv
touch "${MUSICCAPS}/.clips.started"
${train_cmd} JOB=1:"${nj}" "${log}/fetch.JOB.log" python -m espnet2_slap.bin.slap_fetch clips \
    --csv "${csv}" --audio_dir "${audio}" "${found_in[@]}" --job JOB --num_jobs "${nj}" \
    --unavailable "${log}/unavailable.JOB.tsv"
cat "${log}"/unavailable.*.tsv > "${MUSICCAPS}/unavailable.tsv"
touch "${MUSICCAPS}/.clips.done"
echo "local/download.sh: $(wc -l < "${MUSICCAPS}/unavailable.tsv") clips could not be fetched (listed in ${MUSICCAPS}/unavailable.tsv; logs in ${log}); stage 1 leaves them out"
