# Where the dataset lies on this machine (the environment wins over the defaults here).
# HF_DATASET: a Hugging Face datasets dataset on disk: a directory written by save_to_disk, or a directory of
# data files load_dataset reads (e.g. a dataset repository downloaded with `huggingface-cli download --repo-type
# dataset NAME --local-dir DIR`). This recipe fetches nothing.
HF_DATASET=${HF_DATASET:-}
# HF_AUDIO_COLUMN: its audio column (datasets' Audio feature, or file paths); HF_CAPTION_COLUMNS: its caption
# columns, space-separated (the captions of a row are kept in this order).
HF_AUDIO_COLUMN=${HF_AUDIO_COLUMN:-audio}
HF_CAPTION_COLUMNS=${HF_CAPTION_COLUMNS:-caption}
