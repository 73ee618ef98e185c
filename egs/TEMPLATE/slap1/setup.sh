#!/usr/bin/env bash
# Makes a new recipe, as ESPnet's egs2/TEMPLATE/asr1/setup.sh does:
#   egs/TEMPLATE/slap1/setup.sh egs/<corpus>/slap1
# copies what you edit per cluster and corpus: cmd.sh, conf/ (queue confs conf/{slurm,sge,pbs}.conf and the
# training configs) and a local/ skeleton (local/data.sh) with a run.sh calling ./slap.sh; links what stays
# shared: slap.sh, path.sh and utils/ (../../TEMPLATE/slap1/...).
set -euo pipefail

if [ $# -ne 1 ] || [ "$1" = "--help" ] || [ "$1" = "-h" ]; then
    echo "Usage: $0 <new recipe dir, e.g. egs/mycorpus/slap1>" >&2
    exit 2
fi
dir=$1
template=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -e "${dir}" ] && [ -n "$(ls -A "${dir}")" ]; then
    echo "$0: ${dir} exists and is not empty: give a new directory" >&2
    exit 1
fi
mkdir -p "${dir}"
# the links are relative (../../TEMPLATE/slap1), as in every recipe: the new one must sit two levels below egs/
if [ "$(cd "${dir}/../../TEMPLATE/slap1" 2>/dev/null && pwd)" != "${template}" ]; then
    rmdir "${dir}" 2>/dev/null || true
    echo "$0: ${dir} must be egs/<corpus>/slap1 beside egs/TEMPLATE (../../TEMPLATE/slap1 from it)" >&2
    exit 1
fi

cp "${template}/cmd.sh" "${dir}/"
mkdir -p "${dir}/conf" "${dir}/local"
cp "${template}"/conf/*.conf "${template}"/conf/*.yaml "${dir}/conf/"
for f in slap.sh sweep.sh path.sh utils; do
    ln -s "../../TEMPLATE/slap1/${f}" "${dir}/${f}"
done

cat > "${dir}/local/data.sh" <<'SKELETON'
#!/usr/bin/env bash
# Stage 1 of this recipe: write Kaldi data dirs data/<set>/{wav.scp,text} (and utt2* label files) for the sets
# that run.sh names (--train_set, --valid_set, --test_sets); see egs/*/slap1/local/data.sh for examples.
set -euo pipefail
echo "local/data.sh: write the data preparation of this corpus here" >&2
exit 1
SKELETON
cat > "${dir}/run.sh" <<'SKELETON'
#!/usr/bin/env bash
# Set this corpus's options here (./slap.sh --help lists them all); run.sh's own arguments come last and win.
set -euo pipefail
cd "$(dirname "$0")"

./slap.sh \
    --train_set train --valid_set valid --test_sets test \
    --train_config conf/train_slap.yaml \
    "$@"
SKELETON
chmod +x "${dir}/local/data.sh" "${dir}/run.sh"
echo "$0: made ${dir}: edit its run.sh, local/data.sh, cmd.sh and conf/"
