#!/usr/bin/env bash
# gm_render: mini_synth's sizes and tiny configs on other sounds: 8 General-MIDI instruments rendered with a real
# soundfont (FluidSynth), to check on a second corpus what mini_synth suggests (issue 23's ablation).
#   ./run.sh                                   # SLAP, stages 1-9
#   ./run.sh --train_config conf/tuning/train_clap_tiny.yaml
set -euo pipefail
cd "$(dirname "$0")"

./slap.sh \
    --audio_format flac --nj 2 \
    --train_set train --valid_set valid --test_sets test \
    --nbpe 120 \
    --train_config conf/tuning/train_slap_tiny.yaml \
    --label_files "utt2instrument utt2tempo utt2mode utt2register utt2dynamics" \
    "$@"
