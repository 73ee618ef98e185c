#!/usr/bin/env python3
"""Score extracted embeddings: retrieval, zero-shot classification, modality gap, MLP probe.

An embedding directory holds ``<name>.npy`` (float32, (N, D)) and ``<name>.ids`` (N lines, one id per line, in
row order), e.g. ``audio_projection.npy`` / ``audio_projection.ids``. Kaldi-style inputs:
  --text2audio   "<text_id> <audio_id>" per line (several captions per clip); without it text ids = audio ids
  --labels       "<audio_id> <label>" (single-label) or "<audio_id> [<label1> <label2> ...]" (--multi_label; an
                 id alone: no positive label)
  --known        "<audio_id> <label> ..." the labels known for a clip (OpenMic's mask); others do not count
  --classes      one class name per line (default: the sorted labels seen in --labels)
Zero-shot prompt embeddings: one embedding file whose ids are ``<prompt_index>:<class>``, prompt_index into
the paper's four prompts (0 "{}", 1 "{} music", 2 "this sounds like {}", 3 "A {} track"), every class for every
prompt present. Every subcommand writes --out_json and --out_md (a Markdown table).

    python -m espnet2_slap.bin.slap_score retrieval --emb_dir exp/slap_x/embed/test \\
        --text2audio exp/slap_x/embed/test/text2audio --out_json retrieval.json --out_md retrieval.md

(slap_embed writes ``text2audio`` into the embedding directory.) The prompt embeddings of ``zeroshot`` are not
written by any entry point yet: the recipes score zero-shot in stage 8 (slap_results, datasets/label_eval.py),
which embed the prompts with the model.
"""

import argparse
import json
import logging
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from espnet2_slap.metrics.zeroshot import PROMPTS
from espnet2_slap.utils.cli import start_logging


def load_embeddings(emb_dir: Path, name: str) -> Tuple[List[str], np.ndarray]:
    """``emb_dir/<name>.ids`` and ``.npy`` -> (ids, (N, D) float32), checking counts and duplicate ids."""
    npy, ids_file = emb_dir / f"{name}.npy", emb_dir / f"{name}.ids"
    for path in (npy, ids_file):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
    ids = [line.strip() for line in ids_file.read_text(encoding="utf-8").splitlines()]
    matrix = np.load(npy, mmap_mode="r")
    if matrix.ndim != 2 or matrix.shape[0] == 0:
        raise ValueError(f"{npy}: expected a non-empty (N, D) matrix, got shape {matrix.shape}")
    if len(ids) != matrix.shape[0]:
        raise ValueError(f"{ids_file}: {len(ids)} ids but {npy} has {matrix.shape[0]} rows")
    seen = {}
    for lineno, utt in enumerate(ids, 1):
        if not utt:
            raise ValueError(f"{ids_file}:{lineno}: empty id")
        if utt in seen:
            raise ValueError(f"{ids_file}:{lineno}: id {utt!r} already on line {seen[utt]}")
        seen[utt] = lineno
    return ids, np.asarray(matrix, dtype=np.float32)


def read_kaldi(path: Path, min_fields: int = 2) -> List[Tuple[int, str, List[str]]]:
    """'<id> <field> ...' lines -> [(line number, id, fields)], non-empty, each with at least ``min_fields``."""
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if len(fields) < min_fields:
            raise ValueError(f"{path}:{lineno}: expected '<id> <value> ...', got {line!r}")
        rows.append((lineno, fields[0], fields[1:]))
    if not rows:
        raise ValueError(f"{path}: empty file")
    return rows


def row_of(ids: List[str]) -> Dict[str, int]:
    return {utt: i for i, utt in enumerate(ids)}


def lookup(index: Dict[str, int], utt: str, where: str, what: str) -> int:
    if utt not in index:
        raise ValueError(f"{where}: id {utt!r} has no {what}")
    return index[utt]


def text_audio_rows(text_ids: List[str], audio_ids: List[str], text2audio: Optional[Path]) -> np.ndarray:
    """(T,) audio row of each text row, from the mapping file or by equal ids."""
    audio_row = row_of(audio_ids)
    if text2audio is None:
        return np.array([lookup(audio_row, t, f"text id {t} (no --text2audio)", "audio embedding") for t in text_ids])
    mapping = {}
    for lineno, text_id, fields in read_kaldi(text2audio):
        mapping[text_id] = lookup(audio_row, fields[0], f"{text2audio}:{lineno}", "audio embedding")
    return np.array([lookup(mapping, t, f"text embedding id {t}", f"line in {text2audio}") for t in text_ids])


def class_list(labels: Path, classes: Optional[Path]) -> List[str]:
    if classes is not None:
        names = [line.strip() for line in classes.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not names:
            raise ValueError(f"{classes}: empty file")
        return names
    return sorted({label for _, _, fields in read_kaldi(labels, min_fields=1) for label in fields})


def label_targets(
    path: Path, classes: List[str], audio_ids: List[str], multi_label: bool
) -> Tuple[np.ndarray, np.ndarray]:
    """-> (embedding rows (M,), targets: (M,) class indices, or (M, C) {0,1} with ``multi_label``, where a line
    with the id alone is a clip with no positive label)."""
    audio_row, class_index = row_of(audio_ids), {c: i for i, c in enumerate(classes)}
    rows, targets = [], []
    for lineno, utt, fields in read_kaldi(path, min_fields=1):
        where = f"{path}:{lineno}"
        rows.append(lookup(audio_row, utt, where, "audio embedding"))
        if not multi_label and len(fields) != 1:
            raise ValueError(f"{where}: {len(fields)} labels for {utt}; use --multi_label")
        indices = [lookup(class_index, label, where, "entry in the class list") for label in fields]
        targets.append(indices[0] if not multi_label else np.isin(np.arange(len(classes)), indices).astype(int))
    return np.array(rows), np.array(targets)


def known_mask(
    path: Optional[Path], classes: List[str], audio_ids: List[str], rows: np.ndarray
) -> Optional[np.ndarray]:
    """(M, C) known labels of the labelled rows, or None without --known (all known)."""
    if path is None:
        return None
    known_rows, known = label_targets(path, classes, audio_ids, multi_label=True)
    by_row = dict(zip(known_rows.tolist(), known))
    return np.stack([lookup(by_row, r, f"audio id {audio_ids[r]}", f"line in {path}") for r in rows]).astype(bool)


def prompt_embeddings(emb_dir: Path, name: str, classes: List[str]) -> Dict[str, np.ndarray]:
    """Embedding file with ids '<prompt_index>:<class>' -> {prompt: (C, D)} for the prompts present."""
    ids, matrix = load_embeddings(emb_dir, name)
    row = row_of(ids)
    indices = sorted({utt.split(":", 1)[0] for utt in ids})
    result = {}
    for index in indices:
        if not index.isdigit() or int(index) >= len(PROMPTS):
            raise ValueError(f"{emb_dir / name}.ids: prompt index {index!r} is not in 0..{len(PROMPTS) - 1}")
        rows = [lookup(row, f"{index}:{c}", f"{emb_dir / name}.ids", "line (prompt:class)") for c in classes]
        result[PROMPTS[int(index)]] = matrix[rows]
    return result


def flatten(results: Dict, prefix: str = "") -> Dict[str, object]:
    flat = {}
    for key, value in results.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key} / "))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def write_results(results: Dict, out_json: Path, out_md: Path, title: str):
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    lines = [f"# {title}", "", "| metric | value |", "| --- | --- |"]
    for key, value in flatten(results).items():
        lines.append(f"| {key} | {value:.2f} |" if isinstance(value, float) else f"| {key} | {value} |")
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    logging.info(f"wrote {out_json} and {out_md}")


def score_retrieval(args) -> Dict:
    from espnet2_slap.metrics.retrieval import retrieval_metrics

    audio_ids, audio = load_embeddings(args.emb_dir, args.audio_name)
    text_ids, text = load_embeddings(args.emb_dir, args.text_name)
    return retrieval_metrics(audio, text, text_audio_rows(text_ids, audio_ids, args.text2audio), args.block_size)


def score_zeroshot(args) -> Dict:
    from espnet2_slap.metrics.zeroshot import zeroshot_metrics

    audio_ids, audio = load_embeddings(args.emb_dir, args.audio_name)
    classes = class_list(args.labels, args.classes)
    rows, targets = label_targets(args.labels, classes, audio_ids, args.multi_label)
    prompts = prompt_embeddings(args.prompt_dir, args.prompt_name, classes)
    mask = known_mask(args.known, classes, audio_ids, rows)
    return zeroshot_metrics(audio[rows], prompts, targets, args.multi_label, mask, args.select)


def score_gap(args) -> Dict:
    from espnet2_slap.metrics.modality_gap import modality_gap, umap_picture

    _, audio = load_embeddings(args.emb_dir, args.audio_name)
    _, text = load_embeddings(args.emb_dir, args.text_name)
    results = modality_gap(audio, text, args.seed)
    if args.png is not None:
        title = f"{args.audio_name} vs {args.text_name}"
        results["umap_png"] = str(umap_picture(audio, text, args.png, args.seed, title))
    return results


def read_split(path: Path) -> List[str]:
    return [utt for _, utt, _ in read_kaldi(path, min_fields=1)]


def score_probe(args) -> Dict:
    from espnet2_slap.metrics.probe import MLPProbe

    audio_ids, features = load_embeddings(args.emb_dir, args.feature_name)
    classes = class_list(args.labels, args.classes)
    rows, targets = label_targets(args.labels, classes, audio_ids, args.multi_label)
    mask = known_mask(args.known, classes, audio_ids, rows)
    labelled = {audio_ids[r]: i for i, r in enumerate(rows)}
    split = {}
    for name in ("train", "valid", "test"):
        path = getattr(args, f"{name}_ids")
        split[name] = np.array([lookup(labelled, utt, f"{path}", f"line in {args.labels}") for utt in read_split(path)])
    pick = {name: (features[rows[i]], targets[i], None if mask is None else mask[i]) for name, i in split.items()}
    probe = MLPProbe(features.shape[1], len(classes), args.multi_label, patience=args.patience, seed=args.seed)
    (x_train, y_train, mask_train), (x_valid, y_valid, mask_valid) = pick["train"], pick["valid"]
    probe.fit(x_train, y_train, x_valid, y_valid, mask_train, mask_valid)
    return {"test": probe.evaluate(*pick["test"]), "epochs": probe.epochs_run, "best_epoch": probe.best_epoch}


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    commands = {
        "retrieval": (score_retrieval, "A->T and T->A R@1/5/10, MdNR, MNR (exact, blocked)"),
        "zeroshot": (score_zeroshot, "zero-shot accuracy or ROC-AUC / mAP / mAR per prompt and the best"),
        "gap": (score_gap, "modality gap: linear separability, centroid distance, UMAP picture"),
        "probe": (score_probe, "MLP probe (512 hidden, early stopping) on frozen features"),
    }
    for name, (func, help_text) in commands.items():
        p = sub.add_parser(
            name, help=help_text, description=help_text, formatter_class=argparse.ArgumentDefaultsHelpFormatter
        )
        p.set_defaults(func=func)
        p.add_argument("--emb_dir", type=Path, required=True, help="directory of <name>.npy / <name>.ids")
        p.add_argument("--out_json", type=Path, required=True)
        p.add_argument("--out_md", type=Path, required=True)
        if name in ("retrieval", "gap", "zeroshot"):
            p.add_argument("--audio_name", default="audio_projection", help="audio embedding file name")
        if name in ("retrieval", "gap"):
            p.add_argument("--text_name", default="text_projection", help="text embedding file name")
        if name in ("zeroshot", "probe"):
            p.add_argument("--labels", type=Path, required=True, help="'<audio_id> <label> [<label> ...]' lines")
            p.add_argument("--classes", type=Path, help="class names, one a line (default: sorted labels seen)")
            p.add_argument("--multi_label", action="store_true")
            p.add_argument("--known", type=Path, help="'<audio_id> <label> ...' known labels (multi-label mask)")
        if name in ("gap", "probe"):
            p.add_argument("--seed", type=int, default=0)
    sub.choices["retrieval"].add_argument("--text2audio", type=Path, help="'<text_id> <audio_id>' lines")
    sub.choices["retrieval"].add_argument("--block_size", type=int, default=256, help="queries per score block")
    sub.choices["zeroshot"].add_argument(
        "--prompt_dir", type=Path, required=True, help="embedding dir with ids '<prompt_index>:<class>'"
    )
    sub.choices["zeroshot"].add_argument("--prompt_name", default="text_projection")
    sub.choices["zeroshot"].add_argument("--select", help="metric picking the best prompt (default: accuracy or mAP)")
    sub.choices["gap"].add_argument("--png", type=Path, help="where the UMAP picture goes (none when not given)")
    sub.choices["probe"].add_argument("--feature_name", required=True, help="frozen feature file name")
    for split in ("train", "valid", "test"):
        sub.choices["probe"].add_argument(f"--{split}_ids", type=Path, required=True, help="audio ids, one a line")
    sub.choices["probe"].add_argument("--patience", type=int, default=10, help="early-stopping patience (epochs)")
    return parser


def main(cmd=None):
    start_logging("espnet2_slap.bin.slap_score", cmd)
    args = get_parser().parse_args(cmd)
    results = args.func(args)
    write_results(results, args.out_json, args.out_md, f"slap_score {args.command}: {args.emb_dir}")


if __name__ == "__main__":
    main()
