#!/usr/bin/env bash
# GTZAN, 10 genres (README.md): evaluation of a model trained elsewhere, stages 1, 2, 7, 8;
# stage 8 (python -m espnet2_slap.bin.slap_results) scores what conf/score.yaml lists: zero-shot on test, and the
# MLP probe when train and valid are embedded too.
#   ./run.sh --packed_model ../../privatecaps/slap1/exp/slap_train_slap/packed_model.zip
#   ./run.sh --packed_model model.zip --test_sets "train valid test"      # zero-shot and probe
set -euo pipefail
cd "$(dirname "$0")"

./slap.sh \
    --skip_train true \
    --audio_format flac --nj 8 \
    --test_sets test \
    "$@"
