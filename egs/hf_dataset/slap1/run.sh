#!/usr/bin/env bash
# A Hugging Face datasets dataset on disk as the corpus (README.md): HF_DATASET, HF_AUDIO_COLUMN and
# HF_CAPTION_COLUMNS in db.sh or the environment.
#   HF_DATASET=/data/my_captions ./run.sh                                   # stages 1-9, conf/train_slap.yaml
#   HF_DATASET=/data/sdd HF_CAPTION_COLUMNS="caption" ./run.sh --skip_train true --packed_model model.zip
#   ./run.sh --local_data_opts "--split train=train validation=valid --sets train valid"
set -euo pipefail
cd "$(dirname "$0")"

./slap.sh \
    --audio_format flac --nj 8 \
    --train_set train --valid_set valid --test_sets test \
    --train_config conf/train_slap.yaml \
    "$@"
