#!/usr/bin/env python3
"""Stage 8 of the recipe: score a trained model's test-set embeddings and write <exp>/RESULTS.md.

    python -m espnet2_slap.bin.slap_results --exp exp/slap_train_slap_tiny --dumpdir dump/raw --test_sets test \\
        --label_files utt2instrument utt2mode --model_file valid.r1_t2a.ave.pth

For each test set, from the embeddings stage 7 wrote in <exp>/embed/<set> (slap_embed's format):
  - the numbers of clips and captions scored;
  - retrieval A->T and T->A (R@1/5/10, MdNR, MNR; several captions per clip) on each embedding kind after the
    encoders (SLAP: predictions and projections; CLAP: projections), espnet2_slap/metrics/retrieval.py, with the
    chance level (the expected figures of random scores, ``chance_retrieval``);
  - zero-shot single-label accuracy for each label file <dumpdir>/<set>/<label_file> ("<utt> <class>"), with
    the paper's four prompts (best one reported), on the retrieval kind, espnet2_slap/metrics/zeroshot.py;
  - the modality gap on the projections: linear separability, centroid distance, and a UMAP picture
    (<exp>/embed/<set>/umap.png), espnet2_slap/metrics/modality_gap.py.
Every figure also goes to <exp>/results.json. The embeddings must be those of --model_file, its config and the
test set's data list as they are now (the identity slap_embed records in <exp>/embed/<set>/identity.json):
otherwise nothing is written and the error says to run stage 7 again.
"""

import argparse
import json
import logging
from pathlib import Path
from typing import Dict, List

import numpy as np

from espnet2_slap.bin.slap_embed import embedding_identity, identity_difference, model_identity, read_identity
from espnet2_slap.bin.slap_score import load_embeddings, text_audio_rows
from espnet2_slap.inference import AudioTextModel
from espnet2_slap.metrics.modality_gap import modality_gap, umap_picture
from espnet2_slap.metrics.retrieval import chance_retrieval, retrieval_metrics
from espnet2_slap.metrics.zeroshot import PROMPTS, zeroshot_metrics
from espnet2_slap.utils.cli import start_logging


def check_identity(embed_dir: Path, config: Path, model_file: Path, model_id: Dict, data_dir: Path) -> None:
    """ValueError unless both modalities' embeddings in ``embed_dir`` were made by this model file and config
    (``model_id``, slap_embed's ``model_identity`` of them) from ``data_dir`` as it is now (slap_embed's
    identity.json)."""
    recorded = read_identity(embed_dir / "identity.json") or {}
    for modality in ("audio", "text"):
        previous = recorded.get(modality)
        chunk_size = (previous or {}).get("chunk_size", 0)
        differs = identity_difference(previous, embedding_identity(model_id, data_dir, modality, chunk_size))
        if differs:
            made_by = f"made by {previous['model_file']}" if previous else "of unknown origin"
            raise ValueError(
                f"{embed_dir}: the {modality} embeddings are {made_by}, not by {model_file} with {config} on "
                f"{data_dir} as they are now ({', '.join(differs)} differ); compute them again: the recipe with "
                f"--stage 7, or python -m espnet2_slap.bin.slap_embed --train_config {config} --model_file "
                f"{model_file} --data_dir {data_dir} --output_dir {embed_dir}"
            )


def score_retrieval(embed_dir: Path, kinds: List[str]) -> Dict[str, Dict]:
    """{kind: retrieval metrics} for each embedding kind, and "chance": the figures of random scores."""
    results = {}
    for kind in kinds:
        audio_ids, audio = load_embeddings(embed_dir, f"audio_{kind}")
        text_ids, text = load_embeddings(embed_dir, f"text_{kind}")
        rows = text_audio_rows(text_ids, audio_ids, embed_dir / "text2audio")
        results[kind] = retrieval_metrics(audio, text, rows)
    results["chance"] = chance_retrieval(rows, len(audio_ids))
    return results


def data_counts(embed_dir: Path, audio_ids: List[str], text_ids: List[str]) -> Dict[str, int]:
    """Clips, captions and the fewest / most captions of a clip among the embeddings scored."""
    per_clip = np.bincount(text_audio_rows(text_ids, audio_ids, embed_dir / "text2audio"), minlength=len(audio_ids))
    return dict(
        clips=len(audio_ids),
        captions=len(text_ids),
        min_captions_per_clip=int(per_clip.min()),
        max_captions_per_clip=int(per_clip.max()),
    )


def score_zero_shot(model: AudioTextModel, embed_dir: Path, label_file: Path, kind: str) -> Dict:
    ids, audio = load_embeddings(embed_dir, f"audio_{kind}")
    labels = dict(line.split(maxsplit=1) for line in label_file.read_text(encoding="utf-8").splitlines())
    missing = [uid for uid in ids if uid not in labels]
    if missing:
        raise ValueError(f"{label_file}: no label for {len(missing)} utterances, e.g. {missing[0]}")
    classes = sorted(set(labels.values()))
    targets = np.array([classes.index(labels[uid]) for uid in ids])
    prompt_text = {p: model.embed_text([p.format(c) for c in classes])[kind] for p in PROMPTS}
    result = zeroshot_metrics(audio, prompt_text, targets)
    result["classes"] = classes
    return result


def export_note(slap: bool) -> str:
    """What of the retrieval table a transformers export (slap_export --format hf) carries."""
    if slap:
        return (
            "The projection rows are the space a transformers export carries (`slap_export --format hf`); SLAP's "
            "predictions do not fit ClapModel's two-layer projection and are not exported."
        )
    return "The projection rows are exactly what a transformers export carries (`slap_export --format hf`)."


def markdown(results: Dict, exp: Path, model_file: str, model_sha256: str) -> str:
    lines = [f"# RESULTS: {exp}", "", f"Model: `{exp / model_file}` (SHA-256 {model_sha256[:16]}...)", ""]
    for dset, res in results.items():
        n = res["counts"]
        per_clip = n["min_captions_per_clip"]
        if n["max_captions_per_clip"] != per_clip:
            per_clip = f"{per_clip} to {n['max_captions_per_clip']}"
        lines += [
            f"## {dset}",
            "",
            f"{n['clips']} clips, {n['captions']} captions ({per_clip} a clip).",
            "",
            "### Retrieval (%; MdNR/MNR: normalised ranks, lower is better; chance: random scores)",
            "",
            "| embedding | direction | R@1 | R@5 | R@10 | MdNR | MNR |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for kind, by_dir in res["retrieval"].items():  # the embedding kinds, then "chance"
            for direction, m in by_dir.items():
                lines.append(
                    f"| {kind} | {direction} | "
                    + " | ".join(f"{m[k]:.2f}" for k in ("R@1", "R@5", "R@10", "MdNR", "MNR"))
                    + " |"
                )
        lines += ["", export_note("prediction" in res["retrieval"])]
        if res["zero_shot"]:
            lines += [
                "",
                "### Zero-shot classification (accuracy %, best of the paper's prompts)",
                "",
                "| labels | classes | chance | accuracy | best prompt |",
                "| --- | --- | --- | --- | --- |",
            ]
            for name, z in res["zero_shot"].items():
                n = len(z["classes"])
                lines.append(f"| {name} | {n} | {100 / n:.1f} | {z['best']['accuracy']:.2f} | `{z['best_prompt']}` |")
        gap = res["modality_gap"]
        lines += [
            "",
            "### Modality gap (projections)",
            "",
            f"- linear separability: {gap['separability']:.1f} % (50 % = no gap)",
            f"- centroid distance: {gap['centroid_distance']:.3f}",
            f"- UMAP: `{gap['umap']}`",
            "",
        ]
    return "\n".join(lines)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp", type=Path, required=True, help="Training directory (config.yaml, embed/)")
    parser.add_argument("--model_file", required=True, help="The *.pth in --exp that stage 7 used")
    parser.add_argument("--dumpdir", type=Path, required=True, help="Where the test sets' data dirs are")
    parser.add_argument("--test_sets", nargs="+", required=True)
    parser.add_argument("--label_files", nargs="*", default=[], help="Single-label files of the test sets")
    return parser


def main(cmd=None):
    start_logging("espnet2_slap.bin.slap_results", cmd)
    args = get_parser().parse_args(cmd)
    config, model_file = args.exp / "config.yaml", args.exp / args.model_file
    model = AudioTextModel.from_pretrained(config, model_file)
    model_id = model_identity(config, model_file)
    results = {}
    for dset in args.test_sets:
        embed_dir = args.exp / "embed" / dset
        check_identity(embed_dir, config, model_file, model_id, args.dumpdir / dset)
        kinds = list(reversed(model.kinds[1:]))  # the retrieval kind first
        audio_ids, audio = load_embeddings(embed_dir, "audio_projection")
        text_ids, text = load_embeddings(embed_dir, "text_projection")
        gap = modality_gap(audio, text)
        gap["umap"] = str(umap_picture(audio, text, embed_dir / "umap.png", title=f"{args.exp.name}: {dset}"))
        results[dset] = {
            "counts": data_counts(embed_dir, audio_ids, text_ids),
            "retrieval": score_retrieval(embed_dir, kinds),
            "zero_shot": {
                name: score_zero_shot(model, embed_dir, args.dumpdir / dset / name, kinds[0])
                for name in args.label_files
            },
            "modality_gap": gap,
        }
    (args.exp / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    markdown_text = markdown(results, args.exp, args.model_file, model_id["model_sha256"])
    (args.exp / "RESULTS.md").write_text(markdown_text, encoding="utf-8")
    logging.info(f"wrote {args.exp / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
