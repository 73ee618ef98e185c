#!/usr/bin/env python3
"""Train mini_synth's tiny SLAP or CLAP from Python with ESPnet-EZ (``espnetez``), without slap.sh's stages.

    cd egs/mini_synth/slap1
    python ez_train.py --max_epoch 5                                            # SLAP from data/{train,valid}
    python ez_train.py --config conf/tuning/train_clap_tiny.yaml --dataset pairs   # CLAP from (waveform, caption)s

What is missing is made first: the corpus in --data_dir (stage 1's, with local/data.sh's defaults) and a
sentencepiece model of --nbpe pieces on its training captions in <exp_dir>/tokenizer (or give --bpemodel and
--token_list, e.g. stage 3's data/token_list/bpe_unigram120/{bpe.model,tokens.txt}). Then ESPnet-EZ's two steps:
collect_stats() into <exp_dir>/stats (shapes, global_mvn statistics) and train() into <exp_dir> (checkpoints,
config.yaml, the averaged model). --dataset kaldi reads the Kaldi data dirs (wav.scp, text); --dataset pairs
loads every clip and caption line into memory and trains from those (waveform, caption) pairs, the way a custom
dataset is given (espnet2_slap/tasks/ez.py says how either is set up).
"""

import argparse
import logging
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
from espnet2.fileio.read_text import read_2columns_text

# first: registers task "slap" with ESPnet-EZ, and its package keeps ESPnet's imports offline (offline.py)
from espnet2_slap.tasks import ez as slap_ez  # isort: skip

import espnetez as ez  # isort: skip
from espnet2_slap.audio.io import read_mono  # isort: skip
from espnet2_slap.audio.scp import read_wav_scp  # isort: skip
from espnet2_slap.corpora.synth import make_corpus  # isort: skip
from espnet2_slap.train.tokenizer import train_sentencepiece  # isort: skip
from espnet2_slap.utils.cli import LOG_FORMAT  # isort: skip

HERE = Path(__file__).resolve().parent


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=HERE / "conf" / "tuning" / "train_slap_tiny.yaml")
    parser.add_argument("--dataset", choices=["kaldi", "pairs"], default="kaldi", help="see above")
    parser.add_argument("--data_dir", type=Path, default=Path("data"), help="holds train/ and valid/")
    parser.add_argument("--exp_dir", type=Path, default=None, help="default: exp/ez_<config name>")
    parser.add_argument("--max_epoch", type=int, default=None, help="default: the config's")
    parser.add_argument("--bpemodel", type=Path, default=None, help="sentencepiece model (with --token_list)")
    parser.add_argument("--token_list", type=Path, default=None)
    parser.add_argument("--nbpe", type=int, default=120, help="pieces of the tokenizer made when none is given")
    parser.add_argument("--ngpu", type=int, default=0)
    return parser


def pairs_of(data_dir: Path) -> List[Tuple[np.ndarray, str]]:
    """(waveform, caption line) of each utterance of a Kaldi data dir, in memory: a stand-in for one's own data."""
    captions = read_2columns_text(data_dir / "text")
    return [(read_mono(rec.path)[0], captions[rec.rec_id]) for rec in read_wav_scp(data_dir / "wav.scp")]


def main(cmd: Optional[Sequence[str]] = None) -> None:
    args = get_parser().parse_args(cmd)
    # ESPnet's training logs (progress, epoch results) at INFO, as slap_train does; before anything logs
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, force=True)
    exp_dir = args.exp_dir or Path("exp") / f"ez_{args.config.stem}"
    if not (args.data_dir / "train" / "wav.scp").exists():
        make_corpus(args.data_dir, num_train=256, num_valid=32, num_test=64, seconds=3.0, fs=16000, seed=0)
    bpemodel, token_list = args.bpemodel, args.token_list
    if bpemodel is None or token_list is None:
        bpemodel, token_list = train_sentencepiece(args.data_dir / "train" / "text", exp_dir / "tokenizer", args.nbpe)

    config = slap_ez.config_from_yaml(args.config, bpemodel=str(bpemodel), token_list=str(token_list))
    if args.max_epoch is not None:
        config["max_epoch"] = args.max_epoch
    if args.dataset == "kaldi":
        data = dict(
            data_info=slap_ez.KALDI_DATA_INFO,
            train_dump_dir=args.data_dir / "train",
            valid_dump_dir=args.data_dir / "valid",
        )
    else:
        data = dict(
            train_dataset=slap_ez.from_pairs(pairs_of(args.data_dir / "train"), config, train=True),
            valid_dataset=slap_ez.from_pairs(pairs_of(args.data_dir / "valid"), config, train=False),
        )
    trainer = ez.Trainer(
        task="slap",
        train_config=config,
        output_dir=str(exp_dir),
        stats_dir=str(exp_dir / "stats"),
        ngpu=args.ngpu,
        **data,
    )
    trainer.collect_stats()
    trainer.train()
    print(f"trained: {exp_dir}")


if __name__ == "__main__":
    main()
