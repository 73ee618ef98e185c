#!/usr/bin/env bash
# Tiny end-to-end run on the synthetic corpus: data, tokenizer, statistics, training and n-best averaging.
# Provisional: the stage-numbered template egs/TEMPLATE/slap1/slap.sh (stages 1-8, queue back-ends,
# sharding, packing, evaluation) replaces this script with the issue "Recipe template and default recipe".
#   ./run.sh [--train_config conf/tuning/train_clap_tiny.yaml] [--max_epoch N] [--ngpu N]
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh

train_config=conf/tuning/train_slap_tiny.yaml
max_epoch=20
ngpu=0
while [ $# -gt 0 ]; do
    case "$1" in
        --train_config) train_config=$2; shift 2 ;;
        --max_epoch) max_epoch=$2; shift 2 ;;
        --ngpu) ngpu=$2; shift 2 ;;
        *) echo "run.sh: unknown option $1" >&2; exit 1 ;;
    esac
done
log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (run.sh) $*"; }
tag=$(basename "${train_config}" .yaml)
stats_dir=exp/stats
mkdir -p exp
exp_dir=exp/${tag}

if [ ! -f data/test/text ]; then
    log "synthesising the corpus into data/"
    python -m espnet2_slap.bin.synth_corpus data --num_train 256 --num_valid 32 --num_test 64 --seconds 3
fi
if [ ! -f data/token_list/tokens.txt ]; then
    log "training the sentencepiece tokenizer"
    python -m espnet2_slap.bin.slap_tokenizer data/train/text data/token_list --vocab_size 120
fi
data_opts=(
    --token_list data/token_list/tokens.txt --bpemodel data/token_list/bpe.model
    --train_data_path_and_name_and_type data/train/wav.scp,speech,sound
    --train_data_path_and_name_and_type data/train/text,text,text
    --valid_data_path_and_name_and_type data/valid/wav.scp,speech,sound
    --valid_data_path_and_name_and_type data/valid/text,text,text
)
if [ ! -f ${stats_dir}/train/feats_stats.npz ]; then
    log "collecting shapes and feature statistics into ${stats_dir}"
    python -m espnet2_slap.bin.slap_train --collect_stats true --config "${train_config}" --normalize none \
        "${data_opts[@]}" --train_shape_file data/train/utt2dur --valid_shape_file data/valid/utt2dur \
        --output_dir ${stats_dir} > exp/collect_stats.log 2>&1 || { echo "failed: see exp/collect_stats.log" >&2; exit 1; }
fi
log "training ${train_config} into ${exp_dir} (log, appended: ${exp_dir}/train.log)"
mkdir -p "${exp_dir}"
python -m espnet2_slap.bin.slap_train --config "${train_config}" "${data_opts[@]}" \
    --normalize_conf stats_file=${stats_dir}/train/feats_stats.npz \
    --train_shape_file ${stats_dir}/train/speech_shape --valid_shape_file ${stats_dir}/valid/speech_shape \
    --max_epoch "${max_epoch}" --ngpu "${ngpu}" --resume true --output_dir "${exp_dir}" \
    >> "${exp_dir}/train.log" 2>&1 || { echo "failed: see ${exp_dir}/train.log" >&2; exit 1; }
grep "epoch results" "${exp_dir}/train.log" | tail -n 1 || true
log "done: averaged model $(ls "${exp_dir}"/*ave_*best.pth | head -n 1)"
