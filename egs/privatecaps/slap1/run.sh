#!/usr/bin/env bash
# PrivateCaps-like corpus: your own full-length tracks with captions (README.md), SLAP at the paper's scale.
#   ./run.sh                                              # stages 1-9 (PRIVATECAPS in db.sh or the environment)
#   ./run.sh --train_config conf/train_clap.yaml          # the contrastive baseline
#   ./run.sh --train_config conf/train_slap_pretrained.yaml --ngpu 4
#   ./run.sh --local_data_opts "--metadata tracks.jsonl --min_seconds 5"   # options of local/data.sh
# The training lists are sharded (--num_splits auto) into one split per 100,000 tracks: a corpus of 260k tracks
# trains on 3 splits; below 100,001 tracks there is one. --num_splits N fixes the number, --split_size the size.
set -euo pipefail
cd "$(dirname "$0")"

./slap.sh \
    --audio_format flac --nj 8 \
    --train_set train --valid_set valid --test_sets test \
    --train_config conf/train_slap.yaml \
    --num_splits auto --split_size 100000 \
    "$@"
