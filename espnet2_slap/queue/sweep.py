"""A study of the recipe: named points (a training config and options), each trained with several seeds, as
the tasks of one array job (``sweep.sh``), then compared by ``slap_compare``.

A study file (YAML)::

    name: lambda                       # the sweep's directory: <expdir>/slap_sweep_<name>
    seeds: [1, 2]                      # each point is trained once a seed (--seeds overrides)
    compare: {x: lambda_inter, series: model, title: "..."}   # slap_compare's plot (optional)
    points:
      - name: slap_l0.5                # the experiment: <expdir>/slap_sweep_<name>/<point>_s<seed>
        train_config: conf/tuning/train_slap_tiny.yaml
        train_args: "--model_conf lambda_inter=0.5"        # optional: added to every seed's --train_args

Each task is one line of ``tasks.sh``: the recipe's ``./run.sh`` from stage 5 to stage 8 with the point's config,
its tag and ``--train_args "<train_args> --seed <seed>"``; stages 1-4 are shared and run once before.
"""

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import yaml

POINT_KEYS = {"name", "train_config", "train_args"}
STUDY_KEYS = {"name", "seeds", "compare", "points"}
COMPARE_KEYS = {"x", "series", "title", "metric"}


@dataclass(frozen=True)
class Point:
    name: str
    train_config: str
    train_args: str = ""


@dataclass(frozen=True)
class Study:
    name: str
    seeds: List[int]
    points: List[Point]
    compare: Dict[str, object]


def _name(value: object, where: str) -> str:
    if not isinstance(value, str) or not value or not all(c.isalnum() or c in "._-" for c in value):
        raise ValueError(f"{where}: a name of letters, digits, '.', '_' and '-' is needed, got {value!r}")
    return value


def read_study(path: Path, seeds: Optional[List[int]] = None) -> Study:
    """The study of ``path`` (see the module's doc); ``seeds`` replaces its seeds. Every config it names must
    exist (relative to the recipe directory, the current one)."""
    if not path.is_file():
        raise FileNotFoundError(f"study {path}: no such file")
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict) or set(raw) - STUDY_KEYS or "points" not in raw or "name" not in raw:
        raise ValueError(f"study {path}: a mapping with name, points and optionally seeds, compare is needed")
    points, names = [], set()
    for i, entry in enumerate(raw["points"] or []):
        where = f"study {path}: points[{i}]"
        if not isinstance(entry, dict) or set(entry) - POINT_KEYS or not {"name", "train_config"} <= set(entry):
            raise ValueError(f"{where}: a mapping of name, train_config and optionally train_args is needed")
        point = Point(_name(entry["name"], where), str(entry["train_config"]), str(entry.get("train_args") or ""))
        if point.name in names:
            raise ValueError(f"{where}: the name {point.name} is used twice")
        if not Path(point.train_config).is_file():
            raise FileNotFoundError(f"{where}: train_config {point.train_config} does not exist")
        if "--seed" in shlex.split(point.train_args):
            raise ValueError(f"{where}: train_args must not set --seed (the study's seeds do)")
        names.add(point.name)
        points.append(point)
    if not points:
        raise ValueError(f"study {path}: no points")
    seeds = list(seeds) if seeds else raw.get("seeds") or [1]
    if not all(isinstance(s, int) for s in seeds) or len(set(seeds)) != len(seeds):
        raise ValueError(f"study {path}: seeds must be distinct integers, got {seeds}")
    compare = raw.get("compare") or {}
    if not isinstance(compare, dict) or set(compare) - COMPARE_KEYS:
        raise ValueError(f"study {path}: compare takes {sorted(COMPARE_KEYS)}, got {compare!r}")
    return Study(_name(raw["name"], f"study {path}: name"), seeds, points, compare)


def experiment_tag(study: Study, point: Point, seed: int) -> str:
    """The recipe's --tag of one task: its experiment is <expdir>/slap_sweep_<study>/<point>_s<seed>."""
    return f"sweep_{study.name}/{point.name}_s{seed}"


def task_lines(study: Study, run_args: List[str]) -> List[str]:
    """One shell command a task, points in order, seeds inner: ``./run.sh`` stages 5-8 with ``run_args``
    (options of the recipe given to every task) after the point's own."""
    lines = []
    for point in study.points:
        for seed in study.seeds:
            train_args = f"{point.train_args} --seed {seed}".strip()
            words = ["./run.sh", "--stage", "5", "--stop_stage", "8", "--train_config", point.train_config]
            words += ["--tag", experiment_tag(study, point, seed), "--train_args", train_args, *run_args]
            lines.append(shlex.join(words))
    return lines


def write_plan(study: Study, out_dir: Path, expdir: str, run_args: List[str]) -> int:
    """``out_dir``/tasks.sh (a task a line), ``experiments`` (their directories, in the same order) and
    ``compare.opts`` (slap_compare's options of the study); returns the number of tasks."""
    if any(
        word.split("=")[0] in ("--train_args", "--tag", "--train_config", "--stage", "--stop_stage")
        for word in run_args
    ):
        raise ValueError(
            f"the options for every task ({shlex.join(run_args)}) must not set --train_args, --tag, --train_config, "
            "--stage or --stop_stage: the study's points set them (put training options in a point's train_args)"
        )
    lines = task_lines(study, [*run_args, "--expdir", expdir])
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "tasks.sh").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    experiments = [f"{expdir}/slap_{experiment_tag(study, p, s)}" for p in study.points for s in study.seeds]
    (out_dir / "experiments").write_text("".join(f"{e}\n" for e in experiments), encoding="utf-8")
    opts = [w for key, value in study.compare.items() for w in (f"--{key}", str(value))]
    (out_dir / "compare.opts").write_text(shlex.join(opts) + "\n", encoding="utf-8")
    return len(lines)
