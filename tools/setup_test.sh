#!/usr/bin/env bash
# Installs what the tests need beyond tools/setup.sh: Debian's slurm-wlm and munge, for the real-Slurm tests
# (tests/test_slurm_real.py start their own slurmctld, slurmd and munged from a temporary directory; nothing is
# configured or started here), gridengine-master, -exec and -client, for the real-SGE tests (tests/test_sge_real.py
# start sge_qmaster and sge_execd from a cell of their own in a temporary directory; debconf tells the packages not
# to configure a cell), fluidsynth with fluid-soundfont-gm, for tests/test_gm_render.py's render, and chromium with
# chromium-driver, for tests/test_search_serve.py's headless browser. Idempotent and quiet: does nothing when all
# are installed; runs apt-get update only when the package lists lack them. Needs root (or sudo).
set -euo pipefail
packages=(slurm-wlm munge gridengine-master gridengine-exec gridengine-client fluidsynth fluid-soundfont-gm chromium
    chromium-driver)

installed() {
    local p
    for p in "${packages[@]}"; do
        [ "$(dpkg-query -W -f='${Status}' "${p}" 2>/dev/null)" = "install ok installed" ] || return 1
    done
}
installed && exit 0

if ! command -v apt-get > /dev/null; then
    echo "tools/setup_test.sh: no apt-get here: install ${packages[*]} by hand" >&2
    exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo > /dev/null || { echo "tools/setup_test.sh: installing ${packages[*]} needs root" >&2; exit 1; }
    sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
# gridengine's questions, answered: no cell configured by the package (the tests make their own)
"${sudo[@]}" debconf-set-selections <<EOF
gridengine-common shared/gridengineconfig boolean false
gridengine-common shared/gridenginecell string default
gridengine-common shared/gridenginemaster string $(hostname)
EOF
install() { "${sudo[@]}" apt-get install -y -qq "${packages[@]}" > /dev/null; }
if ! install 2> /dev/null; then
    "${sudo[@]}" apt-get update -qq > /dev/null
    install
fi
installed
echo "tools/setup_test.sh: installed ${packages[*]}"
