#!/usr/bin/env bash
# Fetches mtat from its publisher (README.md) into ${MTAT} (db.sh): resumed, verified, unpacked; what is there
# is skipped, what failed is listed. Offline (SLAP_OFFLINE=1 or HF_HUB_OFFLINE=1): only checks it is all there.
# SLAP_MIRROR=http://host:port fetches from a copy of the publishers' sites. Options go after, e.g. --retries 10
# (python -m espnet2_slap.bin.slap_fetch corpus --help).
set -euo pipefail
. ./path.sh
. ./db.sh
[ -n "${MTAT}" ] || { echo "local/download.sh: set MTAT in db.sh or the environment" >&2; exit 1; }
python -m espnet2_slap.bin.slap_fetch corpus mtat --root "${MTAT}" "$@"
