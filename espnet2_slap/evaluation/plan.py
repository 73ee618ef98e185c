"""What stage 8 scores: a recipe's ``conf/score.yaml`` (``--score_config``) and/or ``--label_files``.

    retrieval: true          # retrieval on every test set with captions (default true)
    modality_gap: true       # linear separability, centroid distance, UMAP picture (default true)
    umap: true               # the UMAP picture of the gap (default true; false saves ~30 s a run in sweeps)
    zero_shot:               # one entry a label file of the test sets (dump/raw/<set>/<labels>)
      - labels: utt2tags
        classes: tags.classes    # class list in the set's dir (default: the sorted labels seen)
        multi_label: true        # ROC-AUC / mAP / mAR (default false: accuracy)
        known: utt2known         # known labels of each clip (multi-label mask; default: all known)
        sets: [test]             # the test sets scored (default: every test set that has the label file)
    probe:                   # MLP probes on frozen embeddings
      - labels: utt2tags
        classes: tags.classes
        multi_label: true
        known: utt2known
        splits: [train, valid, test]   # fit, early stop, score: all three must be among the test sets
        feature: representation        # the embedding kind probed (default representation)

``--label_files a b`` adds single-label zero-shot entries ``{labels: a}``, ``{labels: b}``.
"""

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import List, Optional

import yaml


@dataclass
class LabelTask:
    labels: str
    classes: Optional[str] = None
    multi_label: bool = False
    known: Optional[str] = None

    @property
    def name(self) -> str:
        """The task's name in results.json and RESULTS.md: the label file, and its mask when it has one."""
        return self.labels if self.known is None else f"{self.labels} (known: {self.known})"


@dataclass
class ZeroShotTask(LabelTask):
    sets: Optional[List[str]] = None


@dataclass
class ProbeTask(LabelTask):
    splits: List[str] = field(default_factory=lambda: ["train", "valid", "test"])
    feature: str = "representation"


@dataclass
class ScorePlan:
    retrieval: bool = True
    modality_gap: bool = True
    umap: bool = True
    zero_shot: List[ZeroShotTask] = field(default_factory=list)
    probe: List[ProbeTask] = field(default_factory=list)


def _build(cls, entry, where: str):
    """A dataclass from a yaml mapping, every key known and typed as the field says."""
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected a mapping of {[f.name for f in fields(cls)]}, got {entry!r}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(entry) - set(known))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
    for name, value in entry.items():
        expected = {bool: bool, str: str}.get(known[name].type)
        if expected is not None and not isinstance(value, expected):
            raise ValueError(f"{where}: {name} must be a {expected.__name__}, got {value!r}")
        if name in ("sets", "splits") and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise ValueError(f"{where}: {name} must be a list of set names, got {value!r}")
    return cls(**entry)


def read_plan(score_config: Optional[Path], label_files: List[str]) -> ScorePlan:
    """The plan of ``score_config`` (see the module's doc) with the single-label ``label_files`` added."""
    plan = ScorePlan()
    if score_config is not None:
        if not score_config.is_file():
            raise FileNotFoundError(f"--score_config {score_config}: no such file")
        raw = yaml.safe_load(score_config.read_text(encoding="utf-8")) or {}
        where = str(score_config)
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: expected a mapping of retrieval, modality_gap, zero_shot, probe")
        tasks = {"zero_shot": ZeroShotTask, "probe": ProbeTask}
        for key in tasks:
            if not isinstance(raw.get(key, []), list):
                raise ValueError(f"{where}: {key} must be a list of entries")
            raw[key] = [_build(tasks[key], e, f"{where}: {key}[{i}]") for i, e in enumerate(raw.get(key, []))]
        plan = _build(ScorePlan, raw, where)
        for i, probe in enumerate(plan.probe):
            if len(probe.splits) != 3:
                raise ValueError(f"{where}: probe[{i}] splits must be three sets (fit, stop, test): {probe.splits}")
    plan.zero_shot += [ZeroShotTask(labels=name) for name in label_files]
    return plan
