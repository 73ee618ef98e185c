#!/usr/bin/env bash
# Kaldi-style job runner, ssh back-end: see python -m espnet2_slap.bin.run_jobs --help
exec python -m espnet2_slap.bin.run_jobs --backend ssh "$@"
