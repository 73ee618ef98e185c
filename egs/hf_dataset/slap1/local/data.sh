#!/usr/bin/env bash
# Stage 1 of hf_dataset: data/{train,valid,test} from the datasets dataset ${HF_DATASET} (db.sh): its splits by
# name (train, validation, test), audio decoded once into data/local/audio where the dataset stores it, referenced
# where the dataset keeps files; clips shorter than the paper's 10-s training crop are skipped. Any option of the
# preparation goes after (python -m espnet2_slap.corpora.hf_dataset --help lists them), e.g.
#   local/data.sh --split train=train test=test --sets train test --min_seconds 5
#   local/data.sh --split_column is_eval --split true=test false=train
set -euo pipefail
. ./db.sh
[ -n "${HF_DATASET}" ] || { echo "local/data.sh: set HF_DATASET in db.sh or the environment to a dataset saved on disk (this recipe fetches nothing)" >&2; exit 1; }
[ -d "${HF_DATASET}" ] || { echo "local/data.sh: HF_DATASET=${HF_DATASET} is not a directory: give a save_to_disk directory or a directory of the dataset's data files" >&2; exit 1; }
# shellcheck disable=SC2086
python -m espnet2_slap.corpora.hf_dataset --dataset "${HF_DATASET}" --audio_column "${HF_AUDIO_COLUMN}" \
    --caption_columns ${HF_CAPTION_COLUMNS} --cache_dir data/local/hf_cache --min_seconds 10 "$@"
