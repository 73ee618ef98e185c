#!/usr/bin/env bash
# Fetches the pretrained files the paper-scale configs start from into downloads/ (what is there is skipped),
# through huggingface_hub (HF_ENDPOINT, HF_TOKEN apply): roberta-base (weights, config and tokenizer files of
# FacebookAI/roberta-base), LAION-CLAP's music release music_audioset_epoch_15_esc_90.14.pt (lukewys/laion_clap)
# and htsat_base.pt (a link to it). HTSAT_AudioSet_Saved_1.ckpt (conf/train_slap_htsat_tiny_pretrained.yaml) is
# published on Google Drive only: named, it is checked for and its page given. Recipes link it as
# local/download_pretrained.sh.
#   local/download_pretrained.sh                                  # the three above
#   local/download_pretrained.sh roberta-base HTSAT_AudioSet_Saved_1.ckpt
# Offline (SLAP_OFFLINE=1 or HF_HUB_OFFLINE=1): nothing is fetched, what is missing is named
# (python -m espnet2_slap.bin.slap_fetch pretrained --help).
set -euo pipefail
. ./path.sh
python -m espnet2_slap.bin.slap_fetch pretrained --downloads downloads "$@"
