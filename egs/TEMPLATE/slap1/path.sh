# Activates the environment made by tools/setup.sh, or the one SLAP_VENV names (a venv where ESPnet and this
# plugin are installed, e.g. SLAP_VENV=$VIRTUAL_ENV ./run.sh in one's own ESPnet environment).
MAIN_ROOT=${MAIN_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}  # a test may run a copy of the recipe
SLAP_VENV=${SLAP_VENV:-${MAIN_ROOT}/tools/venv}
if [ ! -f "${SLAP_VENV}/bin/activate" ]; then
    echo "path.sh: ${SLAP_VENV} is missing: run ${MAIN_ROOT}/tools/setup.sh (or set SLAP_VENV to your venv)" >&2
    return 1
fi
export SLAP_VENV  # the jobs of the local and Slurm back-ends activate the same one
# shellcheck disable=SC1091
. "${SLAP_VENV}/bin/activate"
export PYTHONIOENCODING=UTF-8
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
