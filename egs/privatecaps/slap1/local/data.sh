#!/usr/bin/env bash
# Stage 1 of privatecaps: data/{train,valid,test} from ${PRIVATECAPS}/metadata.{csv,jsonl,tsv}; tracks shorter
# than the paper's 10-s training crop are skipped. Any option of the preparation goes after, e.g.
#   local/data.sh --metadata other.csv --audio_root /music --min_seconds 5
# (python -m espnet2_slap.corpora.privatecaps --help lists them).
set -euo pipefail
. ./db.sh
[ -n "${PRIVATECAPS}" ] || { echo "local/data.sh: set PRIVATECAPS in db.sh or the environment (your own collection: this recipe fetches nothing)" >&2; exit 1; }
metadata=${PRIVATECAPS}/metadata.csv
for f in "${PRIVATECAPS}"/metadata.{csv,jsonl,tsv}; do [ -f "${f}" ] && { metadata=${f}; break; }; done
python -m espnet2_slap.corpora.privatecaps --metadata "${metadata}" --min_seconds 10 "$@"
