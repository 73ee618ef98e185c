#!/usr/bin/env python3
"""Zero-shot classification and MLP probes on a label corpus (GTZAN, MTAT, OpenMIC): the recipes' local/score.sh,
which stage 8 runs after slap_results.

    python -m espnet2_slap.corpora.label_eval --exp exp/slap_pretrained --model_file exp/.../model.pth \\
        --dumpdir dump/raw --labels utt2tags --classes tags.classes --multi_label [--known utt2known] \\
        [--test_set test] [--probe_sets train valid test]

Reads the label files data preparation wrote into each set (``<id> <label> ...``; with --multi_label an id
alone means no positive label; --known lists the labels known for a clip, OpenMIC's Y_mask) and the
embeddings stage 7 wrote (``<exp>/embed/<set>/audio_<kind>``). Zero-shot on --test_set: each class name
(``_`` read as a space) in the paper's four prompts, embedded with the model, scored against the audio in its
retrieval embedding; accuracy, or macro ROC-AUC / mAP and mAR (espnet2_slap/metrics/zeroshot.py). Probe (when
the three --probe_sets were embedded): an MLP on the frozen audio representations, fit on the first, early
stopped on the second, scored on the third (espnet2_slap/metrics/probe.py). Writes
``<exp>/label_eval_<labels>.json`` and appends a section to ``<exp>/RESULTS.md``.
"""

import argparse
import json
import logging
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from espnet2_slap.bin.slap_score import class_list, known_mask, label_targets, load_embeddings
from espnet2_slap.inference import AudioTextModel
from espnet2_slap.metrics.probe import MLPProbe
from espnet2_slap.metrics.zeroshot import PROMPTS, zeroshot_metrics
from espnet2_slap.utils.cli import start_logging

logger = logging.getLogger(__name__)


def labelled_set(
    args: argparse.Namespace, dset: str, name: str, classes: List[str]
) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """(features (N, D), targets, known mask (N, C) or None) of the labelled clips of one embedded set, read
    as ``slap_score`` reads them."""
    ids, features = load_embeddings(args.exp / "embed" / dset, name)
    set_dir = args.dumpdir / dset
    rows, labels = label_targets(set_dir / args.labels, classes, ids, args.multi_label)
    mask = known_mask(None if args.known is None else set_dir / args.known, classes, ids, rows)
    return features[rows], labels, mask


def zero_shot(args: argparse.Namespace, model: AudioTextModel, classes: List[str]) -> Dict:
    kind = model.kinds[-1]
    audio, labels, mask = labelled_set(args, args.test_set, f"audio_{kind}", classes)
    words = [c.replace("_", " ") for c in classes]
    prompts = {p: model.embed_text([p.format(w) for w in words])[kind] for p in PROMPTS}
    return {"embedding": kind, **zeroshot_metrics(audio, prompts, labels, args.multi_label, mask)}


def probe(args: argparse.Namespace, classes: List[str]) -> Optional[Dict]:
    embedded = [(args.exp / "embed" / d / "audio_representation.npy").is_file() for d in args.probe_sets]
    if not all(embedded):
        logger.info(f"no probe: stage 7 did not embed all of {' '.join(args.probe_sets)} (give them as --test_sets)")
        return None
    (x_train, y_train, m_train), (x_valid, y_valid, m_valid), test = (
        labelled_set(args, d, "audio_representation", classes) for d in args.probe_sets
    )
    net = MLPProbe(x_train.shape[1], len(classes), args.multi_label, seed=args.seed)
    net.fit(x_train, y_train, x_valid, y_valid, m_train, m_valid)
    return {
        "sets": list(args.probe_sets),
        "test": net.evaluate(*test),
        "epochs": net.epochs_run,
        "best_epoch": net.best_epoch,
    }


def cell(value) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def markdown(name: str, results: Dict) -> str:
    lines = [
        f"## {name}: zero-shot ({results['test_set']}) and probe",
        "",
        "| what | " + " | ".join(results["zero_shot"]["best"]) + " |",
        "| --- |" + " --- |" * len(results["zero_shot"]["best"]),
    ]
    best = results["zero_shot"]
    lines.append(
        f"| zero-shot, best prompt `{best['best_prompt']}` | " + " | ".join(map(cell, best["best"].values())) + " |"
    )
    if results["probe"] is not None:
        lines.append(
            "| MLP probe on representations | " + " | ".join(map(cell, results["probe"]["test"].values())) + " |"
        )
    return "\n".join(lines) + "\n"


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp", type=Path, required=True, help="Dir with config.yaml and embed/<set>/")
    parser.add_argument("--model_file", type=Path, required=True, help="The *.pth stage 7 used")
    parser.add_argument("--dumpdir", type=Path, required=True, help="Where the sets' label files are (dump/raw)")
    parser.add_argument("--labels", required=True, help="Label file name in each set, e.g. utt2genre")
    parser.add_argument("--classes", help="Class list file name in the test set (default: the labels seen)")
    parser.add_argument("--known", help="Known-label file name (multi-label mask), e.g. utt2known")
    parser.add_argument("--multi_label", action="store_true")
    parser.add_argument("--test_set", default="test")
    parser.add_argument("--probe_sets", nargs=3, default=["train", "valid", "test"], metavar=("FIT", "STOP", "TEST"))
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> Dict:
    start_logging("espnet2_slap.corpora.label_eval", cmd)
    args = get_parser().parse_args(cmd)
    if args.known is not None and not args.multi_label:
        raise SystemExit("--known needs --multi_label")
    model = AudioTextModel.from_pretrained(args.exp / "config.yaml", args.model_file)
    test_dir = args.dumpdir / args.test_set
    classes = class_list(test_dir / args.labels, None if args.classes is None else test_dir / args.classes)
    results = {
        "test_set": args.test_set,
        "classes": classes,
        "zero_shot": zero_shot(args, model, classes),
        "probe": probe(args, classes),
    }
    (args.exp / f"label_eval_{args.labels}.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    with open(args.exp / "RESULTS.md", "a", encoding="utf-8") as f:
        f.write("\n" + markdown(args.labels, results))
    logger.info(f"wrote {args.exp / f'label_eval_{args.labels}.json'} and a section of {args.exp / 'RESULTS.md'}")
    return results


if __name__ == "__main__":
    main()
