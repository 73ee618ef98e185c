"""Fetching what the recipes need, the only code here that touches the network: HTTP downloads with resume,
checks and unpacking (``download``), Hugging Face Hub files (``hub``), the pretrained files of the paper-scale
configs (``pretrained_files``), the publishers' official releases of each corpus (``corpus_sources``) and the
MusicCaps clips from YouTube (``youtube``). ``python -m espnet2_slap.bin.slap_fetch`` is their command line."""
