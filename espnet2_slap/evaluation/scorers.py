"""One scorer per task, each over the arrays that ``readers`` read (none reads a file): ``slap_score`` (one task a
call) and stage 8 (``results.py``: every task of the plan, on each test set's files read once) both call these.

- retrieval: A->T and T->A R@1/5/10, MdNR, MNR of each embedding kind (exact ranks in blocks), and the chance
  level (metrics/retrieval.py);
- zero-shot: single-label accuracy, or multi-label ROC-AUC / mAP / mAR with an optional known-label mask, for
  each prompt and for the best prompt, chosen on the scored set itself (the paper's protocol, optimistic;
  metrics/zeroshot.py);
- modality gap: linear separability and centroid distance, optionally a UMAP picture (metrics/modality_gap.py);
- probe: an MLP on frozen features, fit / early-stopped / scored on three labelled sets (metrics/probe.py).
"""

from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from espnet2_slap.evaluation.readers import CaptionedEmbeddings, LabelledClips
from espnet2_slap.metrics.modality_gap import modality_gap, umap_picture
from espnet2_slap.metrics.probe import MLPProbe
from espnet2_slap.metrics.retrieval import chance_retrieval, retrieval_metrics
from espnet2_slap.metrics.zeroshot import zeroshot_metrics


def caption_counts(text_audio: np.ndarray, num_audio: int) -> Dict[str, int]:
    """Clips, captions and the fewest / most captions of a clip, of the (T,) audio rows of the captions."""
    per_clip = np.bincount(text_audio, minlength=num_audio)
    return dict(
        clips=num_audio,
        captions=len(text_audio),
        min_captions_per_clip=int(per_clip.min()),
        max_captions_per_clip=int(per_clip.max()),
    )


def score_retrieval(
    embeddings: Dict[str, CaptionedEmbeddings], block_size: int = 256, device: str = "cpu"
) -> Dict[str, Dict]:
    """{kind: retrieval metrics} of each kind's audio against its captions (``read_captioned``), and "chance": the
    figures of random scores (of the last kind's captions and clips)."""
    results: Dict[str, Dict] = {}
    for kind, e in embeddings.items():
        results[kind] = retrieval_metrics(e.audio, e.text, e.text_audio, block_size, device=device)
    results["chance"] = chance_retrieval(e.text_audio, len(e.audio_ids))
    return results


def score_zero_shot(
    clips: LabelledClips,
    prompts: Dict[str, np.ndarray],
    classes: List[str],
    multi_label: bool,
    select: Optional[str] = None,
    device: str = "cpu",
) -> Dict:
    """Zero-shot metrics of the labelled clips' audio embeddings against ``prompts`` ({prompt: (C, D)}), per
    prompt and the best (chosen on these clips: "best_label" says so), with the classes and the numbers of clips
    scored and left unlabelled."""
    result = zeroshot_metrics(clips.features, prompts, clips.targets, multi_label, clips.known, select, device=device)
    return {**result, "classes": list(classes), "clips": len(clips.ids), "unlabelled_clips": clips.unlabelled}


def score_gap(
    audio: np.ndarray,
    text: np.ndarray,
    seed: int = 0,
    png: Optional[Path] = None,
    title: str = "",
    device: str = "cpu",
) -> Dict:
    """Modality gap of (A, D) audio and (T, D) text embeddings; "umap": the picture written to ``png``."""
    result = modality_gap(audio, text, seed, device=device)
    if png is not None:
        result["umap"] = str(umap_picture(audio, text, png, seed, title))
    return result


def score_probe(
    fit: LabelledClips,
    stop: LabelledClips,
    test: LabelledClips,
    num_classes: int,
    multi_label: bool,
    patience: int = 10,
    seed: int = 0,
    device: str = "cpu",
) -> Dict:
    """An MLP probe fit on ``fit``, early-stopped on ``stop``, scored on ``test``: its test metrics, epochs run
    and best epoch, and the number of clips of each set."""
    probe = MLPProbe(fit.features.shape[1], num_classes, multi_label, patience=patience, seed=seed, device=device)
    probe.fit(fit.features, fit.targets, stop.features, stop.targets, fit.known, stop.known)
    return {
        "test": probe.evaluate(test.features, test.targets, test.known),
        "epochs": probe.epochs_run,
        "best_epoch": probe.best_epoch,
        "clips": {"fit": len(fit.ids), "stop": len(stop.ids), "test": len(test.ids)},
    }
