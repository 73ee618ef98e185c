#!/usr/bin/env bash
# Installs espnet2_slap (`pip install -e .[test]`) into a venv, with the exact, tested set of a constraints file.
#
#   tools/setup.sh            tools/venv         from tools/constraints.txt         (the quick start's and CI's set)
#   tools/setup.sh --newest   tools/venv-newest  from tools/constraints-newest.txt  (the newest releases within
#                                                                                     setup.py's ranges; CI too)
#   --venv DIR, --constraints FILE (or $SLAP_VENV, $SLAP_CONSTRAINTS) name others; $PYTHON the interpreter.
#
# Idempotent: when the venv exists and was made from the current setup.py, this script and the constraints file,
# it only checks the imports.
set -euo pipefail
tools=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "${tools}")
venv=${SLAP_VENV:-${tools}/venv}
constraints=${SLAP_CONSTRAINTS:-${tools}/constraints.txt}
python=${PYTHON:-python3.11}

while [ $# -gt 0 ]; do
    case "$1" in
        --newest) venv=${tools}/venv-newest constraints=${tools}/constraints-newest.txt ;;
        --venv) venv=$2; shift ;;
        --constraints) constraints=$2; shift ;;
        -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1 {print substr($0, 3)}' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "tools/setup.sh: unknown option $1 (--newest, --venv DIR, --constraints FILE)" >&2; exit 1 ;;
    esac
    shift
done
[ -f "${constraints}" ] || { echo "tools/setup.sh: no constraints file ${constraints}" >&2; exit 1; }
constraints=$(cd "$(dirname "${constraints}")" && pwd)/$(basename "${constraints}")
stamp=${venv}/.espnet2_slap_installed

want=$(cat "${root}/setup.py" "${tools}/setup.sh" "${constraints}" | sha256sum | cut -d' ' -f1)
if [ -f "${stamp}" ] && [ "$(cat "${stamp}")" = "${want}" ] \
    && "${venv}/bin/python" -c "import espnet2_slap, espnet2, torchaudio, transformers" 2>/dev/null; then
    echo "tools/setup.sh: ${venv} is up to date"
    exit 0
fi

[ -x "${venv}/bin/python" ] || "${python}" -m venv "${venv}"
# torch first, so that no later requirement can pull another build. (A constraint of pip's own configuration, e.g.
# PIP_CONSTRAINT, still applies besides the file.)
"${venv}/bin/pip" install --quiet -c "${constraints}" torch torchaudio
"${venv}/bin/pip" install --quiet -c "${constraints}" -e "${root}[test]"
echo "${want}" > "${stamp}"
echo "tools/setup.sh: installed espnet2_slap into ${venv} from ${constraints#"${root}/"}"
