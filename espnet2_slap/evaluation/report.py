"""What scoring writes: RESULTS.md (every table of stage 8) and results.json, and the JSON and Markdown of one
``slap_score`` task."""

import json
import logging
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from espnet2_slap.metrics.zeroshot import BEST_LABEL

RETRIEVAL_COLUMNS = ("R@1", "R@5", "R@10", "MdNR", "MNR")
MULTI_LABEL_COLUMNS = ("ROC-AUC", "mAP", "mAR")


def flatten(results: Dict, prefix: str = "") -> Dict[str, object]:
    flat = {}
    for key, value in results.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key} / "))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def write_task_results(results: Dict, out_json: Path, out_md: Path, title: str) -> None:
    """One scorer's results as JSON and as a two-column Markdown table of every figure."""
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    lines = [f"# {title}", "", "| metric | value |", "| --- | --- |"]
    for key, value in flatten(results).items():
        lines.append(f"| {key} | {value:.2f} |" if isinstance(value, float) else f"| {key} | {value} |")
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    logging.info(f"wrote {out_json} and {out_md}")


def export_note(slap: bool) -> str:
    """What of the retrieval table a transformers export (slap_export --format hf) carries."""
    if slap:
        return (
            "The projection rows are the space a transformers export carries (`slap_export --format hf`); SLAP's "
            "predictions do not fit ClapModel's two-layer projection and are not exported."
        )
    return "The projection rows are exactly what a transformers export carries (`slap_export --format hf`)."


def retrieval_section(res: Dict) -> List[str]:
    n = res["counts"]
    per_clip = n["min_captions_per_clip"]
    if n["max_captions_per_clip"] != per_clip:
        per_clip = f"{per_clip} to {n['max_captions_per_clip']}"
    lines = [
        f"{n['clips']} clips, {n['captions']} captions ({per_clip} a clip).",
        "",
        "### Retrieval (%; MdNR/MNR: normalised ranks, lower is better; chance: random scores)",
        "",
        "| embedding | direction | " + " | ".join(RETRIEVAL_COLUMNS) + " |",
        "| --- | --- |" + " --- |" * len(RETRIEVAL_COLUMNS),
    ]
    for kind, by_dir in res["retrieval"].items():  # the embedding kinds, then "chance"
        for direction, m in by_dir.items():
            lines.append(f"| {kind} | {direction} | " + " | ".join(f"{m[k]:.2f}" for k in RETRIEVAL_COLUMNS) + " |")
    return lines + ["", export_note("prediction" in res["retrieval"])]


def unlabelled_note(name: str, z: Dict) -> List[str]:
    if not z.get("unlabelled_clips"):
        return []
    return [f"{z['unlabelled_clips']} embedded clips have no line in {name} and are not in its rows."]


def prompt_rows(z: Dict) -> List[Tuple[str, Dict]]:
    """(row label, metrics) of one zero-shot result: each prompt's (a fixed-prompt figure), then the best's,
    labelled as chosen on the test set (``BEST_LABEL``)."""
    rows = [(f"`{prompt}`", metrics) for prompt, metrics in z["per_prompt"].items()]
    return rows + [(f"{BEST_LABEL}: `{z['best_prompt']}`", z["best"])]


def zero_shot_sections(zero_shot: Dict[str, Dict]) -> List[str]:
    """The single-label and multi-label zero-shot tables: a row a prompt and one for the best prompt of each
    label file, and what was not run."""
    scored = {k: z for k, z in zero_shot.items() if "not_run" not in z}
    single = {k: z for k, z in scored.items() if "accuracy" in z["best"]}
    multi = {k: z for k, z in scored.items() if "accuracy" not in z["best"]}
    lines: List[str] = []
    if single:
        lines += [
            "",
            f"### Zero-shot classification (accuracy %, each of the paper's prompts and the {BEST_LABEL})",
            "",
            "| labels | classes | chance | prompt | accuracy |",
            "| --- | --- | --- | --- | --- |",
        ]
        for name, z in single.items():
            n = len(z["classes"])
            for prompt, m in prompt_rows(z):
                lines.append(f"| {name} | {n} | {100 / n:.1f} | {prompt} | {m['accuracy']:.2f} |")
        for name, z in single.items():
            lines += unlabelled_note(name, z)
    if multi:
        lines += [
            "",
            "### Zero-shot tagging (multi-label, %, macro ROC-AUC / mAP and mAR; each of the paper's prompts and the "
            f"{BEST_LABEL}, by mAP)",
            "",
            "| labels | classes | clips | known-label mask | prompt | "
            + " | ".join(MULTI_LABEL_COLUMNS)
            + " | classes skipped | clips skipped |",
            "| --- | --- | --- | --- | --- |" + " --- |" * (len(MULTI_LABEL_COLUMNS) + 2),
        ]
        for name, z in multi.items():
            for prompt, m in prompt_rows(z):
                lines.append(
                    f"| {name} | {len(z['classes'])} | {z['clips']} | {z['known'] or 'none'} | {prompt} | "
                    + " | ".join(f"{m[k]:.2f}" for k in MULTI_LABEL_COLUMNS)
                    + f" | {m['skipped_classes']} | {m['skipped_clips']} |"
                )
        lines += ["", "Classes skipped: no positive or no negative (known) label; clips skipped: no positive tag."]
        for name, z in multi.items():
            lines += unlabelled_note(name, z)
    not_run = [f"- zero-shot {k}: not run: {z['not_run']}" for k, z in zero_shot.items() if "not_run" in z]
    return lines + ([""] + not_run if not_run else [])


def probe_section(probes: Dict[str, Dict]) -> List[str]:
    lines = ["", "### MLP probes on frozen embeddings (%)", ""]
    for name, p in probes.items():
        if "not_run" in p:
            lines.append(f"- {name}: not run: {p['not_run']}")
            continue
        metrics = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in p["test"].items())
        c = p["clips"]
        lines.append(
            f"- {name} ({p['feature']}; fit {p['splits'][0]} {c['fit']} clips, early stop {p['splits'][1]} "
            f"{c['stop']}, scored on {p['splits'][2]} {c['test']}; best epoch {p['best_epoch']} of {p['epochs']}): "
            f"{metrics}"
        )
    return lines


def gap_section(gap: Dict) -> List[str]:
    """The modality gap of each space ({space: {separability, centroid_distance}}) and the UMAP picture's space."""
    lines = [
        "",
        "### Modality gap (linear separability %: 50 = no gap; centroid distance of the L2-normalised embeddings)",
        "",
        "| space | linear separability | centroid distance |",
        "| --- | --- | --- |",
    ]
    for space, g in gap.items():
        if space != "umap":
            lines.append(f"| {space} | {g['separability']:.1f} | {g['centroid_distance']:.3f} |")
    if gap["umap"]["png"] is None:
        return lines + ["", "UMAP: not drawn (`umap: false` in the score config)"]
    return lines + ["", f"UMAP ({gap['umap']['space']}): `{gap['umap']['png']}`"]


def averaged_epochs(selection: Dict) -> str:
    """E.g. "30, 29, 28 (valid.epoch: 30, 29, 28)": the epochs of the evaluated model, with their values."""
    if not selection["epochs"]:
        return "not known"
    epochs = ", ".join(str(e) for e in selection["epochs"])
    if not selection["values"]:
        return epochs
    return f"{epochs} ({selection['criterion']}: {', '.join(f'{v:.4g}' for v in selection['values'])})"


def model_selection_section(selection: Optional[Dict], model_file: str) -> List[str]:
    """What stage 6 recorded of the model (``<exp>/model_selection.json``, None when absent): epochs trained, the
    rule, the epochs averaged with their values and why."""
    lines = ["## Model selection", ""]
    if selection is None:
        return lines + [
            "The model was trained elsewhere: how long and which epochs it averages are not recorded here (no "
            "model_selection.json, which stage 6 writes).",
            "",
        ]
    trained = f"- epochs trained: {selection['epochs_trained']}"
    if selection["max_epoch"] is not None:
        trained += f" (max_epoch {selection['max_epoch']})"
    if selection["model_file"] != model_file:
        return lines + [
            trained,
            f"- the model scored, `{model_file}`, is not the one stage 6 selected (`{selection['model_file']}`): how "
            "it was chosen is not recorded (run stage 6 with the same options to record it)",
            "",
        ]
    return lines + [
        trained,
        f"- rule: {selection['rule']} (model file `{selection['model_file']}`)",
        f"- epochs averaged: {averaged_epochs(selection)}",
        f"- why: {selection['reason']}",
        "",
    ]


def results_markdown(results: Dict, exp: Path, model_file: str, model_sha256: str, selection: Optional[Dict]) -> str:
    """RESULTS.md of stage 8: the model, its selection (``model_selection_section``), then for each test set the
    counts and retrieval, zero-shot, modality gap and probe tables it has."""
    lines = [f"# RESULTS: {exp}", "", f"Model: `{exp / model_file}` (SHA-256 {model_sha256[:16]}...)", ""]
    lines += model_selection_section(selection, model_file)
    for dset, res in results.items():
        lines += [f"## {dset}", ""]
        if "retrieval" in res:
            lines += retrieval_section(res)
        if res.get("zero_shot"):
            lines += zero_shot_sections(res["zero_shot"])
        if "modality_gap" in res:
            lines += gap_section(res["modality_gap"])
        if res.get("probe"):
            lines += probe_section(res["probe"])
        lines.append("")
    return "\n".join(lines)
