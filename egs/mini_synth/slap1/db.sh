# Where each corpus lies on this machine. mini_synth is synthesised by local/data.sh: nothing to set.
MINI_SYNTH=
