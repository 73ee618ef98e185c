#!/usr/bin/env python3
"""Train a sentencepiece model on the captions of a Kaldi ``text`` file and write its token list, or write the
token list of a local Hugging Face tokenizer.

``python -m espnet2_slap.bin.slap_tokenizer data/train/text data/token_list/bpe_unigram500 --vocab_size 500``
writes ``bpe.model`` and ``tokens.txt`` (one piece per line, in id order: the ``--token_list`` of training).
Every caption of a line counts (captions split at the preprocessor's delimiter).
``python -m espnet2_slap.bin.slap_tokenizer --hugging_face DIR data/token_list/hugging_face`` writes only the
``tokens.txt`` of the tokenizer in DIR (for reference and packing; training tokenizes with DIR itself).
"""

import argparse
import logging
from pathlib import Path
from typing import Tuple

from espnet2_slap.utils.captions import CAPTION_DELIMITER
from espnet2_slap.utils.cli import start_logging


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


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("text", type=Path, nargs="?", help="Kaldi text file: '<utt-id> caption [||| caption ...]'")
    parser.add_argument("out_dir", type=Path, help="Where bpe.model and tokens.txt go")
    parser.add_argument(
        "--vocab_size", type=int, default=500, help="Upper bound: fewer pieces when the captions have fewer"
    )
    parser.add_argument("--model_type", default="unigram", choices=["unigram", "bpe", "char", "word"])
    parser.add_argument("--caption_delimiter", default=CAPTION_DELIMITER)
    parser.add_argument("--hugging_face", type=Path, help="Export the vocabulary of this tokenizer dir instead")
    return parser


def main(cmd=None):
    start_logging("espnet2_slap.bin.slap_tokenizer", cmd)
    parser = get_parser()
    args = parser.parse_args(cmd)
    if args.hugging_face is not None:
        if not args.hugging_face.is_dir():
            parser.error(
                f"--hugging_face {args.hugging_face} is not a directory: save a tokenizer there first (e.g. "
                f"AutoTokenizer.from_pretrained('roberta-base').save_pretrained('{args.hugging_face}') on a machine "
                "with internet access), or train sentencepiece on the captions (give the text file instead)"
            )
        export_hugging_face_vocabulary(args.hugging_face, args.out_dir)
        return
    if args.text is None:
        parser.error("give the text file to train sentencepiece on, or --hugging_face DIR")
    train_sentencepiece(args.text, args.out_dir, args.vocab_size, args.model_type, args.caption_delimiter)


if __name__ == "__main__":
    main()
