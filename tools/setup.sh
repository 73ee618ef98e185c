#!/usr/bin/env bash
# Installs everything espnet2_slap needs into tools/venv (pinned stack, then `pip install -e .[test]`).
# Idempotent: when the venv exists and was made from the current setup.py, it only checks the imports.
set -euo pipefail
tools=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "${tools}")
venv=${tools}/venv
python=${PYTHON:-python3.11}
stamp=${venv}/.espnet2_slap_installed

want=$(cat "${root}/setup.py" "${tools}/setup.sh" | sha256sum | cut -d' ' -f1)
if [ -f "${stamp}" ] && [ "$(cat "${stamp}")" = "${want}" ] \
    && "${venv}/bin/python" -c "import espnet2_slap, espnet2, torchaudio, transformers" 2>/dev/null; then
    echo "tools/setup.sh: ${venv} is up to date"
    exit 0
fi

[ -x "${venv}/bin/python" ] || "${python}" -m venv "${venv}"
# torch first and pinned, so that no later requirement can pull another build.
"${venv}/bin/pip" install --quiet "torch==2.11.0" "torchaudio==2.11.0"
"${venv}/bin/pip" install --quiet -e "${root}[test]"
echo "${want}" > "${stamp}"
echo "tools/setup.sh: installed espnet2_slap into ${venv}"
