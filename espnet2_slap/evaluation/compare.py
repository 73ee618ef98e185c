"""Comparing trained experiments: the stage-8 figures of several ``<exp>`` directories (``config.yaml``,
``results.json``, optionally ``model_selection.json`` and ``train.log``) as one table of groups, mean and spread
over seeds, and a figure (``slap_compare``).

Groups: runs that differ only by their seed. The group key is the exp directory's name with a trailing
``_s<digits>`` or ``_seed<digits>`` removed (``slap_b64_s1`` and ``slap_b64_seed2`` are group ``slap_b64``); the
seeds are config.yaml's ``seed``. The runs of a group must have one config in everything but the seed and where
the run wrote or ran (``IGNORED_KEYS``), one model file and one model-selection rule, and distinct seeds:
otherwise it is an error that names the keys, never a silent mean over different settings.

Per run, from ``results.json[test_set]``: retrieval on the model's retrieval embedding (``EMBEDDING``: SLAP
prediction, CLAP projection) and on the projections, the modality gap on both (results.json's newer
``{"prediction": {...}, "projection": {...}, "umap": {...}}`` or the older ``{"separability",
"centroid_distance", "umap"}``, which is the projections'), whether train.log holds a "possible collapse" or "at chance"
warning, and the epochs trained (model_selection.json's ``epochs_trained``, else the last "<N>epoch results"
line of train.log).
"""

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import yaml

logger = logging.getLogger(__name__)

# The embedding each model retrieves (and classifies zero-shot) with: what results.py scores first.
EMBEDDING = {"slap": "prediction", "clap": "projection"}
# A trailing seed suffix of an exp directory's name; what is left is the group key.
SEED_SUFFIX = re.compile(r"_(?:s|seed)\d+$")
# train/learning_warnings.py's warnings: collapsed projections, validation retrieval at chance
COLLAPSE_LINES = ("possible collapse", "validation retrieval at chance")
EPOCH_LINE = re.compile(r"\b(\d+)epoch results:")  # ESPnet's trainer, after each epoch
RESULTS_MODEL_LINE = re.compile(r"^Model: `([^`]+)`", re.MULTILINE)  # report.py's RESULTS.md

# config.yaml keys that may differ between the seeds of one group: the seed, where the run wrote its files and
# logs, and how its processes met (not what they computed).
IGNORED_KEYS = frozenset(
    {
        "seed",
        "output_dir",
        "config",
        "dist_rank",
        "local_rank",
        "dist_master_addr",
        "dist_master_port",
        "dist_init_method",
        "wandb_id",
        "wandb_name",
    }
)

# Defaults of what config.yaml may lack (ESPnet writes its options in full; model_conf and optim_conf hold what
# was given). tests/test_compare.py checks them against SLAPTask's parser, the models and torch.optim.
ESPNET_DEFAULTS = {
    "optim": "adadelta",
    "batch_size": 20,
    "accum_grad": 1,
    "max_epoch": 40,
    "seed": 0,
    "scheduler": None,
    "fresh_batches": False,
    "predictor_lr_scale": 1.0,
}
SLAP_DEFAULTS = {
    "lambda_inter": 0.5,
    "tau": 0.995,
    "tau_schedule": "constant",
    "predictor_hidden": 4096,
    "predictor_batchnorm": False,
}
TWO_TOWER_DEFAULTS = {"projector_batchnorm": False}
OPTIM_DEFAULTS = {  # torch.optim's defaults: (lr, weight_decay)
    "adam": (1e-3, 0.0),
    "adamw": (1e-3, 1e-2),
    "sgd": (1e-3, 0.0),
    "adadelta": (1.0, 0.0),
}

# The fields of a run that --x, --series and the table's columns choose from, in the table's order.
FIELDS = (
    "model",
    "batch_size",
    "accum_grad",
    "effective_batch",
    "lambda_inter",
    "tau",
    "tau_schedule",
    "projector_batchnorm",
    "predictor_batchnorm",
    "predictor_hidden",
    "lr",
    "weight_decay",
    "scheduler",
    "predictor_lr_scale",
    "max_epoch",
    "fresh_batches",
    "model_file",
    "selection_rule",
)
# The config.yaml keys the fields show (left out of the list of other differences).
FIELD_KEYS = frozenset(
    {
        "model",
        "batch_size",
        "accum_grad",
        "model_conf.lambda_inter",
        "model_conf.tau",
        "model_conf.tau_schedule",
        "model_conf.projector_batchnorm",
        "model_conf.audio_projector_conf.batchnorm",
        "model_conf.text_projector_conf.batchnorm",
        "model_conf.predictor_batchnorm",
        "model_conf.predictor_hidden",
        "optim_conf.lr",
        "optim_conf.weight_decay",
        "scheduler",
        "predictor_lr_scale",
        "max_epoch",
        "fresh_batches",
    }
)
LOG2_FIELDS = frozenset({"batch_size", "accum_grad", "effective_batch", "predictor_hidden"})
LOG10_FIELDS = frozenset({"lr", "weight_decay"})


@dataclass(frozen=True)
class Metric:
    key: str
    label: str  # the table's column
    digits: int


METRICS = (
    Metric("r1_a2t", "R@1 A->T", 2),
    Metric("r1_t2a", "R@1 T->A", 2),
    Metric("r10_a2t", "R@10 A->T", 2),
    Metric("r10_t2a", "R@10 T->A", 2),
    Metric("r10_a2t_proj", "R@10 A->T proj", 2),
    Metric("r10_t2a_proj", "R@10 T->A proj", 2),
    Metric("gap_sep", "gap sep %", 1),
    Metric("gap_dist", "gap dist", 3),
    Metric("gap_sep_proj", "gap sep % proj", 1),
    Metric("gap_dist_proj", "gap dist proj", 3),
    Metric("collapse", "collapse", 0),
    Metric("epochs_trained", "epochs", 1),
)
METRIC = {m.key: m for m in METRICS}
DEFAULT_PLOT_METRICS = ("r10_a2t", "r10_t2a")


class CompareError(ValueError):
    """What makes a comparison impossible or misleading: a missing file, a test set not scored, a group of runs
    with different settings."""


@dataclass
class Run:
    """One exp directory: its config, fields (``FIELDS``), metrics (``METRICS`` keys, None where results.json
    has no such figure), test-set counts and the extras of train.log and model_selection.json."""

    exp: Path
    config: Dict[str, Any]
    seed: int
    fields: Dict[str, Any]
    metrics: Dict[str, Optional[float]]
    counts: Optional[Dict[str, int]]
    collapse_warnings: int
    model_selection: Optional[Dict[str, Any]]


@dataclass
class Group:
    key: str
    runs: List[Run]

    @property
    def fields(self) -> Dict[str, Any]:
        return self.runs[0].fields


def group_key(exp: Path) -> str:
    """``exp/slap_b64_s3`` -> ``slap_b64``: the name without a trailing ``_s<digits>`` / ``_seed<digits>``."""
    return SEED_SUFFIX.sub("", Path(exp).resolve().name)


def flatten(config: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    """Nested mappings as one level with dotted keys (``{"a": {"b": 1}}`` -> ``{"a.b": 1}``); lists stay."""
    flat: Dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def differing_keys(a: Dict[str, Any], b: Dict[str, Any], ignored=IGNORED_KEYS) -> List[str]:
    """The dotted keys of two configs whose values differ (a key only one has counts), sorted."""
    fa, fb = flatten(a), flatten(b)
    missing = object()
    return sorted(k for k in set(fa) | set(fb) if k not in ignored and fa.get(k, missing) != fb.get(k, missing))


def projector_batchnorm(conf: Dict[str, Any]) -> Any:
    """model_conf's BatchNorm of the projectors: one bool, or ``"audio X, text Y"`` when the per-tower
    ``<tower>_projector_conf`` make them differ."""
    both = conf.get("projector_batchnorm", TWO_TOWER_DEFAULTS["projector_batchnorm"])
    per = {tower: (conf.get(f"{tower}_projector_conf") or {}).get("batchnorm", both) for tower in ("audio", "text")}
    return per["audio"] if per["audio"] == per["text"] else f"audio {per['audio']}, text {per['text']}"


def config_fields(config: Dict[str, Any]) -> Dict[str, Any]:
    """The ``FIELDS`` of a config.yaml (mapping), defaults filled in; the SLAP-only ones are None for CLAP.
    ``effective_batch`` is batch_size x accum_grad (ESPnet's batch_size is the batch over all GPUs).
    ``model_file`` and ``selection_rule`` are not in the config: None here (``read_run`` sets them)."""
    model = config.get("model")
    conf = config.get("model_conf") or {}
    optim_conf = config.get("optim_conf") or {}
    slap = model == "slap"
    batch = config.get("batch_size", ESPNET_DEFAULTS["batch_size"])
    accum = config.get("accum_grad", ESPNET_DEFAULTS["accum_grad"])
    lr_default, wd_default = OPTIM_DEFAULTS.get(config.get("optim", ESPNET_DEFAULTS["optim"]), (None, None))

    def slap_conf(name: str) -> Any:
        return conf.get(name, SLAP_DEFAULTS[name]) if slap else None

    return {
        "model": model,
        "batch_size": batch,
        "accum_grad": accum,
        "effective_batch": batch * accum,
        "lambda_inter": slap_conf("lambda_inter"),
        "tau": slap_conf("tau"),
        "tau_schedule": slap_conf("tau_schedule"),
        "projector_batchnorm": projector_batchnorm(conf),
        "predictor_batchnorm": slap_conf("predictor_batchnorm"),
        "predictor_hidden": slap_conf("predictor_hidden"),
        "lr": optim_conf.get("lr", lr_default),
        "weight_decay": optim_conf.get("weight_decay", wd_default),
        "scheduler": config.get("scheduler", ESPNET_DEFAULTS["scheduler"]),
        "predictor_lr_scale": config.get("predictor_lr_scale", ESPNET_DEFAULTS["predictor_lr_scale"]) if slap else None,
        "max_epoch": config.get("max_epoch", ESPNET_DEFAULTS["max_epoch"]),
        "fresh_batches": config.get("fresh_batches", ESPNET_DEFAULTS["fresh_batches"]),
        "model_file": None,
        "selection_rule": None,
    }


def gap_by_space(gap: Optional[Dict[str, Any]]) -> Dict[str, Dict[str, float]]:
    """results.json's modality gap as {space: {"separability", "centroid_distance"}}; the older shape (one
    ``separability`` / ``centroid_distance`` at the top) is the projections'."""
    if not gap:
        return {}
    if "separability" in gap:
        return {"projection": gap}
    return {space: gap[space] for space in ("prediction", "projection") if isinstance(gap.get(space), dict)}


def set_metrics(res: Dict[str, Any], model: str) -> Dict[str, Optional[float]]:
    """The retrieval and gap ``METRICS`` of one test set's results (``results.json[set]``) of a ``model``; None
    where the results have no such figure."""
    kind = EMBEDDING[model]
    retrieval, gaps = res["retrieval"], gap_by_space(res.get("modality_gap"))

    def recall(space: str, direction: str, k: int) -> Optional[float]:
        return retrieval.get(space, {}).get(direction, {}).get(f"R@{k}")

    def gap(space: str, name: str) -> Optional[float]:
        return gaps.get(space, {}).get(name)

    return {
        "r1_a2t": recall(kind, "A->T", 1),
        "r1_t2a": recall(kind, "T->A", 1),
        "r10_a2t": recall(kind, "A->T", 10),
        "r10_t2a": recall(kind, "T->A", 10),
        "r10_a2t_proj": recall("projection", "A->T", 10),
        "r10_t2a_proj": recall("projection", "T->A", 10),
        "gap_sep": gap(kind, "separability"),
        "gap_dist": gap(kind, "centroid_distance"),
        "gap_sep_proj": gap("projection", "separability"),
        "gap_dist_proj": gap("projection", "centroid_distance"),
    }


def read_train_log(path: Path) -> Tuple[int, Optional[int]]:
    """(the number of "possible collapse" and "validation retrieval at chance" warning lines, the last epoch with
    results) of a train.log; (0, None) when there is none."""
    if not path.is_file():
        return 0, None
    collapses, last = 0, None
    with path.open(encoding="utf-8", errors="replace") as log:
        for line in log:
            if any(warning in line for warning in COLLAPSE_LINES):
                collapses += 1
            match = EPOCH_LINE.search(line)
            if match:
                last = max(last or 0, int(match.group(1)))
    return collapses, last


def results_model_file(exp: Path) -> Optional[str]:
    """The model file stage 8 scored, from RESULTS.md's "Model:" line (its file name), or None."""
    path = exp / "RESULTS.md"
    if not path.is_file():
        return None
    match = RESULTS_MODEL_LINE.search(path.read_text(encoding="utf-8", errors="replace"))
    return Path(match.group(1)).name if match else None


def read_run(exp: Path, test_set: str) -> Run:
    """One exp directory's figures on ``test_set``; a CompareError naming the directory when its config.yaml
    or results.json is missing, or results.json lacks the set or the model's retrieval embedding."""
    exp = Path(exp)
    if not exp.is_dir():
        raise CompareError(f"{exp}: no such experiment directory")
    config_path, results_path = exp / "config.yaml", exp / "results.json"
    if not config_path.is_file():
        raise CompareError(f"{exp}: no config.yaml (the training config ESPnet writes): not a training directory")
    if not results_path.is_file():
        raise CompareError(f"{exp}: no results.json: score it first (stage 8, slap_results)")
    config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    results = json.loads(results_path.read_text(encoding="utf-8"))
    if test_set not in results:
        have = ", ".join(results) or "none"
        raise CompareError(f"{exp}: results.json has no test set {test_set!r}; it has: {have} (see --test_set)")
    res = results[test_set]
    model = config.get("model")
    if model not in EMBEDDING:
        raise CompareError(f"{exp}: config.yaml's model is {model!r}; slap_compare knows {', '.join(EMBEDDING)}")
    if EMBEDDING[model] not in res.get("retrieval", {}):
        raise CompareError(
            f"{exp}: results.json's {test_set} has no retrieval on {EMBEDDING[model]}, the {model} model's "
            "retrieval embedding (a test set without captions?)"
        )
    selection_path = exp / "model_selection.json"
    selection = json.loads(selection_path.read_text(encoding="utf-8")) if selection_path.is_file() else None
    collapses, last_epoch = read_train_log(exp / "train.log")
    metrics: Dict[str, Optional[float]] = set_metrics(res, model)
    metrics["collapse"] = float(collapses > 0)
    trained = (selection or {}).get("epochs_trained", last_epoch)
    metrics["epochs_trained"] = None if trained is None else float(trained)
    fields = config_fields(config)
    fields["model_file"] = (selection or {}).get("model_file") or results_model_file(exp)
    fields["selection_rule"] = (selection or {}).get("rule")
    return Run(
        exp=exp,
        config=config,
        seed=config.get("seed", ESPNET_DEFAULTS["seed"]),
        fields=fields,
        metrics=metrics,
        counts=res.get("counts"),
        collapse_warnings=collapses,
        model_selection=selection,
    )


def short(value: Any, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def check_group(key: str, runs: List[Run]) -> None:
    """Refuse a group whose runs differ in anything but the seed (and ``IGNORED_KEYS``), in the model file or
    selection rule (where both runs name one), in the test set's counts, or that has a seed twice."""
    first = runs[0]
    for run in runs[1:]:
        keys = differing_keys(first.config, run.config)
        keys += [
            name
            for name in ("model_file", "selection_rule")
            if None not in (first.fields[name], run.fields[name]) and first.fields[name] != run.fields[name]
        ]
        if first.counts and run.counts and first.counts != run.counts:
            keys.append("test set counts")
        if keys:
            a, b = ({**flatten(r.config), **r.fields, "test set counts": r.counts} for r in (first, run))
            shown = "; ".join(f"{k}: {short(a.get(k))} vs {short(b.get(k))}" for k in keys[:3])
            raise CompareError(
                f"group {key}: {first.exp} and {run.exp} differ in {', '.join(keys)} ({shown}), not only in the "
                "seed: a mean over them would mix settings. Name them apart (the group key is the directory name "
                "without a trailing _s<N> / _seed<N>)"
            )
    seen: Dict[int, Path] = {}
    for run in runs:
        if run.seed in seen:
            raise CompareError(f"group {key}: {seen[run.seed]} and {run.exp} have the same seed {run.seed}")
        seen[run.seed] = run.exp


def group_runs(runs: List[Run]) -> List[Group]:
    """Runs grouped by ``group_key`` (groups in the order of their first run, runs by seed), each checked."""
    groups: Dict[str, List[Run]] = {}
    for run in runs:
        groups.setdefault(group_key(run.exp), []).append(run)
    for key, members in groups.items():
        check_group(key, members)
    return [Group(key, sorted(members, key=lambda r: r.seed)) for key, members in groups.items()]


def summary(values: Sequence[Optional[float]]) -> Dict[str, Any]:
    """{"mean", "std" (sample std, None under two values), "n" (values present), "values" (one per seed, None
    where missing)} of one metric over a group's runs."""
    present = np.array([v for v in values if v is not None], dtype=float)
    n = len(present)
    return {
        "mean": float(present.mean()) if n else None,
        "std": float(present.std(ddof=1)) if n > 1 else None,
        "n": n,
        "values": list(values),
    }


def sort_key(value: Any) -> Tuple:
    """Numbers before strings before None, each in their order."""
    if value is None:
        return (2, "")
    if isinstance(value, (int, float)):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def metric_key(name: str) -> str:
    """A metric's key from its key or its table label (case and spaces ignored)."""
    norm = name.lower().replace(" ", "")
    for m in METRICS:
        if norm in (m.key, m.label.lower().replace(" ", "")):
            return m.key
    known = ", ".join(f"{m.key} ({m.label})" for m in METRICS)
    raise CompareError(f"unknown metric {name!r}; known: {known}")


def plot_metrics(groups: List[Dict[str, Any]], names: Optional[Sequence[str]]) -> List[str]:
    """--metric's keys, or the default: R@10 A->T and T->A and the gap's separability on the retrieval
    embedding (on the projections when a group has no figure for the retrieval embedding, e.g. SLAP scored
    before results.json had the prediction gap)."""
    if names:
        return [metric_key(name) for name in names]
    gap = "gap_sep" if all(g["metrics"]["gap_sep"]["n"] for g in groups) else "gap_sep_proj"
    return [*DEFAULT_PLOT_METRICS, gap]


def lines_plot(groups: List[Group], summaries: List[Dict[str, Any]], x: str, series: str, metrics: List[str]):
    """The data of the line plot: per --series value (sorted), its groups sorted by --x, with each metric's
    means and stds; groups without an --x value are skipped. Two groups at one (series, x) point are an error
    naming what else differs between them."""
    points: Dict[Tuple, Group] = {}
    lines: Dict[Any, List[Tuple[Group, Dict]]] = {}
    skipped = []
    for group, summ in zip(groups, summaries):
        xv, sv = group.fields[x], group.fields[series]
        if xv is None:
            skipped.append(group.key)
            continue
        if (sv, xv) in points:
            other = points[(sv, xv)]
            keys = [f for f in FIELDS if other.fields[f] != group.fields[f]]
            keys += differing_keys(other.runs[0].config, group.runs[0].config, IGNORED_KEYS | FIELD_KEYS)
            raise CompareError(
                f"groups {other.key} and {group.key} are one point ({series} {sv}, {x} {xv}) of the plot; they "
                f"differ in {', '.join(keys) or 'nothing'}: choose --series (or fewer experiments) to tell them apart"
            )
        points[(sv, xv)] = group
        lines.setdefault(sv, []).append((group, summ))
    if skipped:
        logger.warning(f"not in the plot: {', '.join(skipped)} (no {x})")
    out = []
    for sv in sorted(lines, key=sort_key):
        members = sorted(lines[sv], key=lambda gs: sort_key(gs[0].fields[x]))
        out.append(
            {
                "series": sv,
                "groups": [g.key for g, _ in members],
                "x": [g.fields[x] for g, _ in members],
                "mean": {m: [s["metrics"][m]["mean"] for _, s in members] for m in metrics},
                "std": {m: [s["metrics"][m]["std"] for _, s in members] for m in metrics},
            }
        )
    return out, skipped


def compare(
    exp_dirs: Sequence[Path],
    test_set: str = "test",
    x: Optional[str] = None,
    series: str = "model",
    metrics: Optional[Sequence[str]] = None,
) -> Dict[str, Any]:
    """The comparison of ``exp_dirs`` on ``test_set`` as compare.json holds it (see the bin's --help): the
    groups (rows, sorted by --series then --x when --x is given) with their fields, seeds, runs and metric
    summaries, the fields and other config keys that differ between groups, and the plot's data."""
    for name in (x, series):
        if name is not None and name not in FIELDS:
            raise CompareError(f"unknown field {name!r}; known: {', '.join(FIELDS)}")
    if not exp_dirs:
        raise CompareError("no experiment directories given")
    groups = group_runs([read_run(Path(exp), test_set) for exp in exp_dirs])
    if x is not None:
        groups.sort(key=lambda g: (sort_key(g.fields[series]), sort_key(g.fields[x])))
    summaries = []
    for group in groups:
        runs = group.runs
        summaries.append(
            {
                "label": group.key,
                "model": group.fields["model"],
                "embedding": EMBEDDING[group.fields["model"]],
                "fields": dict(group.fields),
                "n": len(runs),
                "seeds": [r.seed for r in runs],
                "runs": [
                    {
                        "exp": str(r.exp),
                        "seed": r.seed,
                        "collapse_warnings": r.collapse_warnings,
                        "epochs_trained": r.metrics["epochs_trained"],
                        "model_selection": r.model_selection,
                        "counts": r.counts,
                    }
                    for r in runs
                ],
                "metrics": {m.key: summary([r.metrics[m.key] for r in runs]) for m in METRICS},
            }
        )
    # a field differs when the groups it applies to (not None: e.g. tau of SLAP groups) have more than one value
    differing = [f for f in FIELDS if len({repr(g.fields[f]) for g in groups if g.fields[f] is not None}) > 1]
    other = sorted(
        {k for g in groups[1:] for k in differing_keys(groups[0].runs[0].config, g.runs[0].config)} - FIELD_KEYS
    )
    counts = {json.dumps(r.counts, sort_keys=True) for g in groups for r in g.runs}
    chosen = plot_metrics(summaries, metrics)
    if x is not None:
        lines, skipped = lines_plot(groups, summaries, x, series, chosen)
        plot = {"kind": "lines", "x": x, "series": series, "metrics": chosen, "lines": lines, "skipped": skipped}
    else:
        plot = {"kind": "bars", "metrics": chosen, "groups": [g.key for g in groups]}
    return {
        "test_set": test_set,
        "grouping": "exp directory name without a trailing _s<digits> / _seed<digits>; seeds from config.yaml",
        "embeddings": {model: EMBEDDING[model] for model in sorted({g.fields["model"] for g in groups})},
        "metrics": {m.key: m.label for m in METRICS},
        "differing_fields": differing,
        "other_differing_keys": other,
        "same_test_counts": len(counts) <= 1,
        "groups": summaries,
        "plot": plot,
    }
