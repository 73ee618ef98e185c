"""Stage 8: every task of a score plan on the test sets' embeddings (stage 7's ``<exp>/embed/<set>``), scored
with one loaded model (it embeds the zero-shot prompts), into ``<exp>/results.json`` and ``<exp>/RESULTS.md``.

Per test set: the counts, retrieval and the modality gap on each embedding kind (sets with captions; retrieval
with the chance level, the gap with a UMAP picture of the kind retrieval uses first); zero-shot on each label file
of the plan that the set has; the probes whose scored split is this set. Embeddings are used only when their
identity is this model's (identity.py), and each embedding file is read once a test set, for all its tasks
(readers.EmbeddingFiles). RESULTS.md opens with the model selection that stage 6 recorded in
``<exp>/model_selection.json``.
"""

import json
import logging
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

from espnet2_slap.evaluation.identity import check_identity, model_identity
from espnet2_slap.evaluation.plan import ProbeTask, ScorePlan, ZeroShotTask
from espnet2_slap.evaluation.prompt_embeddings import embed_prompts
from espnet2_slap.evaluation.readers import (
    CaptionedEmbeddings,
    EmbeddingFiles,
    class_list,
    read_captioned,
    read_labelled,
)
from espnet2_slap.evaluation.report import results_markdown
from espnet2_slap.evaluation.scorers import caption_counts, score_gap, score_probe, score_retrieval, score_zero_shot
from espnet2_slap.train.model_selection import read_record

logger = logging.getLogger(__name__)


class Stage8:
    """Scores ``plan`` for the model ``exp/model_file`` (config ``exp/config.yaml``) on ``test_sets`` under
    ``dumpdir``. ``load_model`` gives the AudioTextModel (loaded at the first prompt to embed)."""

    def __init__(
        self,
        exp: Path,
        model_file: str,
        dumpdir: Path,
        test_sets: List[str],
        plan: ScorePlan,
        load_model: Callable[[], object],
        device: str = "cpu",
        seed: int = 0,
    ):
        self.exp, self.model_file, self.dumpdir, self.test_sets, self.plan = exp, model_file, dumpdir, test_sets, plan
        self.device, self.seed = device, seed
        self._load_model, self._model = load_model, None
        self.config = exp / "config.yaml"
        self.model_id = model_identity(self.config, exp / model_file)
        self._checked: Dict[str, None] = {}
        self.files = EmbeddingFiles()  # the embedding files read for the test set being scored (score_set)

    def model(self):
        if self._model is None:
            self._model = self._load_model()
        return self._model

    def embed_dir(self, dset: str, modalities: List[str]) -> Path:
        """``<exp>/embed/<set>``, once its embeddings of ``modalities`` are checked to be this model's."""
        out = self.exp / "embed" / dset
        for modality in modalities:
            if f"{dset}:{modality}" not in self._checked:
                data_dir = self.dumpdir / dset
                check_identity(out, self.config, self.exp / self.model_file, self.model_id, data_dir, [modality])
                self._checked[f"{dset}:{modality}"] = None
        return out

    def label_path(self, dset: str, name: Optional[str]) -> Optional[Path]:
        return None if name is None else self.dumpdir / dset / name

    def zero_shot(self, dset: str, task: ZeroShotTask) -> Dict:
        labels = self.label_path(dset, task.labels)
        classes = class_list(labels, self.label_path(dset, task.classes))
        kind = self.retrieval_kinds(dset)[0]
        clips = read_labelled(
            self.embed_dir(dset, ["audio"]), f"audio_{kind}", labels, classes, task.multi_label,
            self.label_path(dset, task.known), self.files,
        )  # fmt: skip
        prompts = {p: e[kind] for p, e in embed_prompts(self.model().embed_text, classes).items()}
        result = score_zero_shot(clips, prompts, classes, task.multi_label, device=self.device)
        return {"embedding": kind, "known": task.known, **result}

    def probe(self, task: ProbeTask) -> Dict:
        missing = [d for d in task.splits if not (self.exp / "embed" / d / f"audio_{task.feature}.npy").is_file()]
        if missing:
            why = f"stage 7 did not embed {' '.join(missing)} (add them to --test_sets)"
            logger.warning(f"probe {task.labels}: not run: {why}")
            return {"not_run": why}
        if task.classes is not None:  # the scored split's class list
            classes = class_list(
                self.label_path(task.splits[2], task.labels), self.label_path(task.splits[2], task.classes)
            )
        else:  # the labels seen in any of the three
            classes = sorted({c for d in task.splits for c in class_list(self.label_path(d, task.labels), None)})
        sets = [
            read_labelled(
                self.embed_dir(dset, ["audio"]), f"audio_{task.feature}", self.label_path(dset, task.labels), classes,
                task.multi_label, self.label_path(dset, task.known), self.files,
            )  # fmt: skip
            for dset in task.splits
        ]
        result = score_probe(*sets, len(classes), task.multi_label, seed=self.seed, device=self.device)
        return {"feature": task.feature, "splits": list(task.splits), "classes": classes, **result}

    def retrieval_kinds(self, dset: str) -> List[str]:
        """The kinds after the encoders that stage 7 wrote, the one retrieval and zero-shot use first (SLAP:
        prediction, projection; CLAP: projection)."""
        emb = self.exp / "embed" / dset
        kinds = [k for k in ("prediction", "projection") if (emb / f"audio_{k}.npy").is_file()]
        if not kinds:
            raise FileNotFoundError(f"{emb}: no audio_projection.npy: run stage 7 (slap_embed) first")
        return kinds

    def zero_shot_sets(self, task: ZeroShotTask) -> List[str]:
        if task.sets is not None:
            return task.sets
        return [d for d in self.test_sets if self.label_path(d, task.labels).is_file()]

    def modality_gap(self, dset: str, emb: Path, embeddings: Dict[str, CaptionedEmbeddings]) -> Dict:
        """{kind: {separability, centroid_distance}} for each retrieval kind (in their order), and "umap": {space,
        png}, the picture of the first kind (SLAP: prediction, CLAP: projection)."""
        kinds = list(embeddings)
        gap: Dict = {}
        for kind, e in embeddings.items():
            png = emb / "umap.png" if kind == kinds[0] and self.plan.umap else None
            gap[kind] = score_gap(e.audio, e.text, self.seed, png, f"{self.exp.name}: {dset} ({kind})", self.device)
        gap["umap"] = {"space": kinds[0], "png": gap[kinds[0]].pop("umap", None)}
        return gap

    def score_set(self, dset: str) -> Dict:
        self.files = EmbeddingFiles()  # this set's files (and the probes' other splits), each read once
        res: Dict = {}
        captions = (self.dumpdir / dset / "text").is_file()
        if captions and (self.plan.retrieval or self.plan.modality_gap):
            emb = self.embed_dir(dset, ["audio", "text"])
            embeddings = read_captioned(emb, self.retrieval_kinds(dset), emb / "text2audio", self.files)
            last = embeddings[list(embeddings)[-1]]  # projection, which every model has
            res["counts"] = caption_counts(last.text_audio, len(last.audio_ids))
            if self.plan.retrieval:
                res["retrieval"] = score_retrieval(embeddings, device=self.device)
        elif not captions:
            logger.info(f"{dset}: no captions ({self.dumpdir / dset / 'text'}): no retrieval, no modality gap")
        res["zero_shot"] = {}
        for task in self.plan.zero_shot:
            if dset in self.zero_shot_sets(task):
                res["zero_shot"][task.name] = self.zero_shot(dset, task)
            elif task.sets is None:  # a test set without this label file
                why = f"{dset} has no {self.label_path(dset, task.labels)}"
                logger.warning(f"zero-shot {task.name}: not scored on {dset}: {why}")
                res["zero_shot"][task.name] = {"not_run": why}
        if captions and self.plan.modality_gap:
            res["modality_gap"] = self.modality_gap(dset, emb, embeddings)
        res["probe"] = {task.name: self.probe(task) for task in self.plan.probe if task.splits[2] == dset}
        return res

    def check_plan(self) -> None:
        """Every set a task names is a test set, and every label file it names is there: checked before scoring."""
        for task in self.plan.zero_shot:
            for dset in task.sets if task.sets is not None else []:
                if dset not in self.test_sets:
                    raise ValueError(f"zero-shot {task.labels}: set {dset} is not among the test sets {self.test_sets}")
            named = task.sets if task.sets is not None else self.test_sets
            absent = [
                str(self.label_path(d, task.labels)) for d in named if not self.label_path(d, task.labels).is_file()
            ]
            if task.sets is not None and absent or len(absent) == len(named):
                raise FileNotFoundError(f"zero-shot {task.labels}: no such file: {', '.join(absent)}")
        for task in self.plan.probe:
            if task.splits[2] not in self.test_sets:
                raise ValueError(f"probe {task.labels}: its scored split {task.splits[2]} is not a test set")

    def run(self) -> Dict:
        self.check_plan()
        selection = read_record(self.exp / "model_selection.json")  # a bad record fails before the scoring
        for name in ("RESULTS.md", "results.json"):  # no figures of an earlier model are left if this run fails
            (self.exp / name).unlink(missing_ok=True)
        results = {dset: self.score_set(dset) for dset in self.test_sets}
        (self.exp / "results.json").write_text(json.dumps(results, indent=2, default=_plain), encoding="utf-8")
        markdown = results_markdown(results, self.exp, self.model_file, self.model_id["model_sha256"], selection)
        (self.exp / "RESULTS.md").write_text(markdown, encoding="utf-8")
        logger.info(f"wrote {self.exp / 'RESULTS.md'} and {self.exp / 'results.json'}")
        return results


def _plain(value):
    """numpy scalars in results.json as Python numbers."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
