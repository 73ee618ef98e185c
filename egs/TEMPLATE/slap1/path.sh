# Activates the environment made by tools/setup.sh.
MAIN_ROOT=${MAIN_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}  # a test may run a copy of the recipe
if [ ! -f "${MAIN_ROOT}/tools/venv/bin/activate" ]; then
    echo "path.sh: ${MAIN_ROOT}/tools/venv is missing: run ${MAIN_ROOT}/tools/setup.sh" >&2
    return 1
fi
# shellcheck disable=SC1091
. "${MAIN_ROOT}/tools/venv/bin/activate"
export PYTHONIOENCODING=UTF-8
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
