#!/usr/bin/env bash
# MusicCaps (README.md): train on the clips with is_audioset_eval false, test on the 2,858 others.
#   ./run.sh                                              # stages 1-9, SLAP at the paper's scale
#   ./run.sh --skip_train true --packed_model ../../privatecaps/slap1/exp/slap_train_slap/packed_model.zip \
#            --local_data_opts "--sets test"              # evaluation only of a model trained elsewhere
#   ./run.sh --local_data_opts "--audio_kind videos"      # the files are whole videos: cut at start_s/end_s
#   ./run.sh --local_data_opts "--audio_dir /data/yt"     # the clips are there (only read), not in $MUSICCAPS/audio
set -euo pipefail
cd "$(dirname "$0")"

./slap.sh \
    --audio_format flac --nj 8 \
    --train_set train --valid_set valid --test_sets test \
    --train_config conf/train_slap.yaml \
    "$@"
