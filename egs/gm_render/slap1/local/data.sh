#!/usr/bin/env bash
# Stage 1 of gm_render: render General-MIDI melodies with a real soundfont (FluidSynth) into data/{train,valid,test}.
#   local/data.sh [--num_train N] [--num_valid N] [--num_test N] [--seconds S] [--seed N] [--nj N]
# Needs Debian's fluidsynth and fluid-soundfont-gm (apt-get install fluidsynth fluid-soundfont-gm).
set -euo pipefail
num_train=256; num_valid=32; num_test=64; seconds=3; seed=0; nj=2
while [ $# -gt 0 ]; do
    case "$1" in
        --num_train|--num_valid|--num_test|--seconds|--seed|--nj) printf -v "${1#--}" '%s' "$2"; shift 2 ;;
        *) echo "local/data.sh: unknown option $1" >&2; exit 1 ;;
    esac
done
python -m espnet2_slap.bin.gm_render_corpus data --num_train "${num_train}" --num_valid "${num_valid}" \
    --num_test "${num_test}" --seconds "${seconds}" --fs 16000 --seed "${seed}" --nj "${nj}"
