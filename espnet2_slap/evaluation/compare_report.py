"""The report of a comparison (``compare.compare``'s dict): compare.md (one Markdown table of the groups, mean ±
std over seeds), compare.png (bars per group, or lines against --x) and compare.json."""

import json
import logging
import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from espnet2_slap.evaluation.compare import FIELDS, LOG2_FIELDS, LOG10_FIELDS, METRICS, Metric, sort_key

logger = logging.getLogger(__name__)


def cell(value: Any) -> str:
    """A field's value in the table."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def metric_cell(summ: Dict[str, Any], metric: Metric, n: int) -> str:
    """ "mean ± std" of a metric; "k/n" runs for the collapse warning; "(n=k)" when fewer runs have it."""
    if metric.key == "collapse":
        return f"{sum(v or 0 for v in summ['values']):.0f}/{n}"
    if not summ["n"]:
        return "-"
    text = f"{summ['mean']:.{metric.digits}f}"
    if summ["std"] is not None:
        text += f" ± {summ['std']:.{metric.digits}f}"
    return text if summ["n"] == n else f"{text} (n={summ['n']})"


def averaged_epochs(group: Dict[str, Any]) -> str:
    """The epochs each seed's model averages (model_selection.json), e.g. "s0: 28 29 30; s1: 27 30"."""
    parts = []
    for run in group["runs"]:
        epochs = (run["model_selection"] or {}).get("epochs")
        parts.append(f"s{run['seed']}: {' '.join(map(str, epochs)) if epochs else '-'}")
    return "; ".join(parts)


def markdown(comparison: Dict[str, Any]) -> str:
    """compare.md: a line on the test set, embeddings and grouping, one table (a row per group), notes."""
    groups, plot = comparison["groups"], comparison["plot"]
    columns = list(comparison["differing_fields"])
    for name in (plot.get("series"), plot.get("x")):
        if name and name not in columns:
            columns.append(name)
    columns = [f for f in FIELDS if f in columns]
    selection = any(r["model_selection"] for g in groups for r in g["runs"])
    embeddings = ", ".join(f"{m.upper()} {e}" for m, e in comparison["embeddings"].items())
    lines = [
        f"Test set `{comparison['test_set']}`; R@k and gap columns on the retrieval embedding ({embeddings}), "
        '"proj" columns on the projections; a row per group of runs that differ only by the seed (exp '
        "directory name without a trailing `_s<N>` / `_seed<N>`, seeds from config.yaml): mean ± sample std over "
        'the seeds; collapse: runs with a "possible collapse" or "validation retrieval at chance" warning in '
        "train.log.",
        "",
    ]
    header = ["group", *columns, "seeds", *(m.label for m in METRICS)] + (["averaged epochs"] if selection else [])
    lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for g in groups:
        row = [g["label"], *(cell(g["fields"][f]) for f in columns), " ".join(map(str, g["seeds"]))]
        row += [metric_cell(g["metrics"][m.key], m, g["n"]) for m in METRICS]
        lines.append("| " + " | ".join(row + ([averaged_epochs(g)] if selection else [])) + " |")
    notes = []
    if comparison["other_differing_keys"]:
        keys = comparison["other_differing_keys"]
        more = f" and {len(keys) - 20} more (compare.json)" if len(keys) > 20 else ""
        notes.append(f"Other config keys that differ between groups: {', '.join(keys[:20])}{more}.")
    if not comparison["same_test_counts"]:
        notes.append("The test set's clip and caption counts differ between groups: not the same test data.")
    if plot["kind"] == "lines" and plot["skipped"]:
        notes.append(f"Not in the plot (no {plot['x']}): {', '.join(plot['skipped'])}.")
    return "\n".join(lines + ([""] + notes if notes else [])) + "\n"


def _nan(values: Sequence[Optional[float]]) -> List[float]:
    """None (no figure; no std under two seeds) as NaN, which matplotlib leaves out."""
    return [v if v is not None else math.nan for v in values]


def plot_png(comparison: Dict[str, Any], png: Path, title: str) -> None:
    """compare.png with matplotlib's Agg canvas: with --x, a subplot per metric, a line per --series value, error
    bars = std over seeds (log2 x axis for batch sizes, log10 for lr / weight decay, categories for text);
    without, one grouped bar chart (a cluster per metric, a bar per group)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import ScalarFormatter

    plot, labels = comparison["plot"], comparison["metrics"]
    metrics = plot["metrics"]
    if plot["kind"] == "lines":
        fig = Figure(figsize=(4.5 * len(metrics), 3.8), layout="constrained")
        axes = fig.subplots(1, len(metrics), squeeze=False)[0]
        xs = [v for line in plot["lines"] for v in line["x"]]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in xs)
        categories = sorted({v for v in xs}, key=sort_key) if not numeric else []
        for ax, metric in zip(axes, metrics):
            for line in plot["lines"]:
                pos = line["x"] if numeric else [categories.index(v) for v in line["x"]]
                ax.errorbar(
                    pos,
                    _nan(line["mean"][metric]),
                    yerr=_nan(line["std"][metric]),
                    marker="o",
                    capsize=3,
                    label=f"{plot['series']} {cell(line['series'])}",
                )
            positive = numeric and xs and min(xs) > 0
            if positive and plot["x"] in LOG2_FIELDS:
                ax.set_xscale("log", base=2)
                ax.xaxis.set_major_formatter(ScalarFormatter())
                ax.set_xticks(sorted(set(xs)))
            elif positive and plot["x"] in LOG10_FIELDS:
                ax.set_xscale("log")
            elif not numeric:
                ax.set_xticks(range(len(categories)), [cell(v) for v in categories])
            ax.set_xlabel(plot["x"])
            ax.set_ylabel(labels[metric])
            ax.set_title(labels[metric])
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize="small")
    else:
        groups = comparison["groups"]
        fig = Figure(figsize=(max(6.0, 1.5 + len(metrics) * (0.5 + 0.35 * len(groups))), 4.2), layout="constrained")
        ax = fig.subplots()
        width = 0.8 / len(groups)
        for i, g in enumerate(groups):
            pos = [j - 0.4 + width * (i + 0.5) for j in range(len(metrics))]
            means = _nan([g["metrics"][m]["mean"] for m in metrics])
            stds = _nan([g["metrics"][m]["std"] for m in metrics])
            ax.bar(pos, means, width, yerr=stds, capsize=3, label=g["label"])
        ax.set_xticks(range(len(metrics)), [labels[m] for m in metrics])
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(title)
    FigureCanvasAgg(fig)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)


def write_comparison(comparison: Dict[str, Any], out: Path, title: Optional[str] = None) -> str:
    """Write ``out``/compare.md, compare.json and compare.png; the Markdown is returned."""
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(comparison)
    (out / "compare.md").write_text(text, encoding="utf-8")
    (out / "compare.json").write_text(json.dumps(comparison, indent=2) + "\n", encoding="utf-8")
    plot_png(comparison, out / "compare.png", title or f"{comparison['test_set']}: mean ± std over seeds")
    logger.info(f"wrote {out / 'compare.md'}, {out / 'compare.json'} and {out / 'compare.png'}")
    return text
