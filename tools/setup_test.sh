#!/usr/bin/env bash
# Installs what the tests need beyond tools/setup.sh: Debian's slurm-wlm and munge, for the real-Slurm tests
# (tests/test_slurm_real.py start their own slurmctld, slurmd and munged from a temporary directory; nothing is
# configured or started here), and fluidsynth with fluid-soundfont-gm, for tests/test_gm_render.py's render. Idempotent and quiet: does nothing when both are installed; runs apt-get update
# only when the package lists lack them. Needs root (or sudo) to install.
set -euo pipefail
packages=(slurm-wlm munge fluidsynth fluid-soundfont-gm)

installed() {
    local p
    for p in "${packages[@]}"; do
        [ "$(dpkg-query -W -f='${Status}' "${p}" 2>/dev/null)" = "install ok installed" ] || return 1
    done
}
installed && exit 0

if ! command -v apt-get > /dev/null; then
    echo "tools/setup_test.sh: no apt-get here: install ${packages[*]} (Slurm, MUNGE, FluidSynth, a GM soundfont) by hand" >&2
    exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo > /dev/null || { echo "tools/setup_test.sh: installing ${packages[*]} needs root" >&2; exit 1; }
    sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
install() { "${sudo[@]}" apt-get install -y -qq "${packages[@]}" > /dev/null; }
if ! install 2> /dev/null; then
    "${sudo[@]}" apt-get update -qq > /dev/null
    install
fi
installed
echo "tools/setup_test.sh: installed ${packages[*]}"
