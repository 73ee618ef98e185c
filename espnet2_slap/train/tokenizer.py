"""The caption tokenizer's files: what the recipes' stage 3 writes (``python -m espnet2_slap.bin.slap_tokenizer``)
and training reads (``--token_type bpe --bpemodel .../bpe.model --token_list .../tokens.txt``, or ``--token_type
hugging_face --bpemodel DIR``: ``train.preprocessor.SLAPPreprocessor`` builds the tokenizer from them).

- ``train_sentencepiece(text_file, out_dir, vocab_size)``: a sentencepiece model (``bpe.model``) trained on every
  caption of a Kaldi ``text`` file (a line's captions split at the preprocessor's delimiter,
  ``corpora.captions.CAPTION_DELIMITER``), and its pieces in id order (``tokens.txt``);
- ``export_hugging_face_vocabulary(tokenizer_dir, out_dir)``: the ``tokens.txt`` of a local Hugging Face tokenizer
  (for reference and packing; training tokenizes with the directory itself).

Here in ``train/``, beside the preprocessor that uses these files.
"""

import logging
from pathlib import Path
from typing import Tuple

from espnet2_slap.corpora.captions import CAPTION_DELIMITER


def train_sentencepiece(
    text_file: Path,
    out_dir: Path,
    vocab_size: int,
    model_type: str = "unigram",
    delimiter: str = CAPTION_DELIMITER,
) -> Tuple[Path, Path]:
    """-> (out_dir/bpe.model, out_dir/tokens.txt)."""
    import sentencepiece as spm

    out_dir.mkdir(parents=True, exist_ok=True)
    captions = out_dir / "captions.txt"
    num = 0
    with open(text_file, encoding="utf-8") as f, open(captions, "w", encoding="utf-8") as g:
        for lineno, line in enumerate(f, 1):
            fields = line.rstrip("\n").split(maxsplit=1)
            if len(fields) < 2:
                raise ValueError(f"{text_file}:{lineno}: no caption after the utterance id")
            for caption in fields[1].split(delimiter):
                g.write(caption.strip() + "\n")
                num += 1
    spm.SentencePieceTrainer.train(
        input=str(captions),
        model_prefix=str(out_dir / "bpe"),
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=1.0,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    sp = spm.SentencePieceProcessor(model_file=str(out_dir / "bpe.model"))
    token_list = out_dir / "tokens.txt"
    token_list.write_text("".join(sp.id_to_piece(i) + "\n" for i in range(sp.get_piece_size())), encoding="utf-8")
    logging.info(f"sentencepiece {model_type} with {sp.get_piece_size()} pieces from {num} captions: {out_dir}")
    return out_dir / "bpe.model", token_list


def export_hugging_face_vocabulary(tokenizer_dir: Path, out_dir: Path) -> Path:
    """-> out_dir/tokens.txt: the tokens of a local tokenizer directory in id order."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    token_list = out_dir / "tokens.txt"
    tokens = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    token_list.write_text("".join(f"{t}\n" for t in tokens), encoding="utf-8")
    logging.info(f"{len(tokens)} tokens of {tokenizer_dir} in {token_list}")
    return token_list
