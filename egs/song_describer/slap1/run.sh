#!/usr/bin/env bash
# Song Describer (README.md): evaluation of a model trained elsewhere by default (stages 1, 2, 7, 8).
#   ./run.sh --packed_model ../../privatecaps/slap1/exp/slap_train_slap/packed_model.zip
#   ./run.sh --packed_model model.zip --local_data_opts "--subset all"      # all 1,106 captions
#   ./run.sh --skip_train false --local_data_opts "--train true"             # train on SDD (tracks split by artist)
set -euo pipefail
cd "$(dirname "$0")"

./slap.sh \
    --skip_train true \
    --audio_format flac --nj 8 \
    --train_set train --valid_set valid --test_sets test \
    --train_config conf/train_slap.yaml \
    "$@"
