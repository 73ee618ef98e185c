#!/usr/bin/env bash
# Stage 1 of mini_synth: synthesise the corpus (numpy, deterministic, no download) into data/{train,valid,test}.
#   local/data.sh [--num_train N] [--num_valid N] [--num_test N] [--seconds S] [--seed N]
set -euo pipefail
num_train=256; num_valid=32; num_test=64; seconds=3; seed=0
while [ $# -gt 0 ]; do
    case "$1" in
        --num_train|--num_valid|--num_test|--seconds|--seed) printf -v "${1#--}" '%s' "$2"; shift 2 ;;
        *) echo "local/data.sh: unknown option $1" >&2; exit 1 ;;
    esac
done
python -m espnet2_slap.bin.synth_corpus data --num_train "${num_train}" --num_valid "${num_valid}" \
    --num_test "${num_test}" --seconds "${seconds}" --fs 16000 --seed "${seed}"
