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
from pathlib import Path

from espnet2_slap.corpora.captions import CAPTION_DELIMITER
from espnet2_slap.train.tokenizer import export_hugging_face_vocabulary, train_sentencepiece
from espnet2_slap.utils.cli import start_logging


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
