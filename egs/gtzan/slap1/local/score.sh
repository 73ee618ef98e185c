#!/usr/bin/env bash
# Stage 8 of gtzan after slap_results: zero-shot and probe scores (python -m espnet2_slap.corpora.label_eval --help).
#   local/score.sh --exp DIR --model_file PTH --dumpdir dump/raw [more options of label_eval]
set -euo pipefail
python -m espnet2_slap.corpora.label_eval --labels utt2genre --classes genre.classes "$@"
