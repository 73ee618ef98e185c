"""Data preparation of the corpus recipes (stage 1): one module per corpus, ``python -m
espnet2_slap.corpora.<corpus> --help``, all writing Kaldi data dirs through ``common.DataDirWriter``."""
