#!/usr/bin/env bash
# mini_synth: a tiny synthetic music-caption corpus, the whole pipeline on a CPU in minutes (ESPnet's mini_an4).
#   ./run.sh                                   # SLAP, stages 1-9
#   ./run.sh --train_config conf/tuning/train_clap_tiny.yaml
#   ./run.sh --stage 5 --stop_stage 6 --ngpu 1 # any option of slap.sh (./slap.sh --help)
set -euo pipefail
cd "$(dirname "$0")"

./slap.sh \
    --audio_format flac --nj 2 \
    --train_set train --valid_set valid --test_sets test \
    --nbpe 120 \
    --train_config conf/tuning/train_slap_tiny.yaml \
    --label_files "utt2instrument utt2tempo utt2mode utt2register utt2dynamics" \
    "$@"
