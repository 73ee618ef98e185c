#!/usr/bin/env bash
# Fetches openmic from its publisher (README.md) into ${OPENMIC} (db.sh): resumed, verified, unpacked; what is there
# is skipped, what failed is listed. Offline (SLAP_OFFLINE=1 or HF_HUB_OFFLINE=1): only checks it is all there.
# SLAP_MIRROR=http://host:port fetches from a copy of the publishers' sites. Options go after, e.g. --retries 10
# (python -m espnet2_slap.bin.slap_fetch corpus --help).
set -euo pipefail
. ./path.sh
. ./db.sh
[ -n "${OPENMIC}" ] || { echo "local/download.sh: set OPENMIC in db.sh or the environment" >&2; exit 1; }
python -m espnet2_slap.bin.slap_fetch corpus openmic --root "${OPENMIC}" "$@"
