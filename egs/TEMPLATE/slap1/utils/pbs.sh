#!/usr/bin/env bash
# Kaldi-style job runner, pbs back-end: see python -m espnet2_slap.bin.run_jobs --help
exec python -m espnet2_slap.bin.run_jobs --backend pbs "$@"
