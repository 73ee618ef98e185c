"""Zero-shot classification metrics: class score = cosine(audio, text(prompt(class))).

The text encoding is not done here: callers pass, per prompt, the (C, D) embeddings of the prompt filled with each
class name. Single-label: accuracy. Multi-label: macro ROC-AUC and mAP (sklearn, per class, then averaged) and the
paper's mAR (per clip, rank all tags by score, average recall@k over k = 1..T, then average over clips). All in %.

An optional (N, C) boolean mask (OpenMic's Y_mask) says which labels are known: unknown ones are left out of the
per-class metrics and of each clip's tag ranking (T is then that clip's number of known tags).

Every prompt's figures are reported (each a fixed-prompt figure), and the best prompt's: the paper's protocol,
which picks the prompt on the very clips it scores (the test set), so that figure is optimistic (``BEST_LABEL``).
"""

from typing import Dict, Optional, Union

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from espnet2_slap.metrics.cosine import Device, cosine_scores

BEST_LABEL = "best prompt, chosen on the test set (paper's protocol; optimistic)"  # what "best" is


def accuracy(scores: np.ndarray, labels: np.ndarray) -> Dict[str, float]:
    """(N, C) scores, (N,) class indices -> {"accuracy": % of clips whose top-scoring class is their label}."""
    return {"accuracy": 100.0 * float(np.mean(np.argmax(scores, axis=1) == np.asarray(labels)))}


def _known(targets: np.ndarray, mask: Optional[np.ndarray]) -> np.ndarray:
    if mask is None:
        return np.ones(targets.shape, dtype=bool)
    if mask.shape != targets.shape:
        raise ValueError(f"mask shape {mask.shape} != targets shape {targets.shape}")
    return np.asarray(mask, dtype=bool)


def per_class_auc_map(scores: np.ndarray, targets: np.ndarray, mask: Optional[np.ndarray] = None) -> Dict[str, float]:
    """(N, C) scores and {0,1} targets -> macro ROC-AUC and mAP over the classes that have, among their known
    labels, at least one positive and one negative; "skipped_classes" counts the others."""
    known = _known(targets, mask)
    aucs, aps = [], []
    for c in range(targets.shape[1]):
        y, s = targets[known[:, c], c], scores[known[:, c], c]
        if y.all() or not y.any():
            continue
        aucs.append(roc_auc_score(y, s))
        aps.append(average_precision_score(y, s))
    if not aucs:
        raise ValueError("no class has both a positive and a negative (known) label: ROC-AUC and mAP undefined")
    return {
        "ROC-AUC": 100.0 * float(np.mean(aucs)),
        "mAP": 100.0 * float(np.mean(aps)),
        "skipped_classes": targets.shape[1] - len(aucs),
    }


def mean_average_recall(scores: np.ndarray, targets: np.ndarray, mask: Optional[np.ndarray] = None) -> Dict[str, float]:
    """(N, C) scores and {0,1} targets -> mAR: per clip, known tags sorted by score (ties in class order),
    mean over k = 1..T of recall@k (positives in the top k / positives), then the mean over clips.
    Clips with no known positive tag are skipped and counted in "skipped_clips"."""
    known = _known(targets, mask)
    positive = (np.asarray(targets) > 0) & known
    order = np.argsort(np.where(known, -scores, np.inf), axis=1, kind="stable")  # unknown tags last
    hits = np.cumsum(np.take_along_axis(positive, order, axis=1), axis=1)  # (N, C) positives in the top k
    num_known, num_pos = known.sum(1), positive.sum(1)
    kept = num_pos > 0
    if not kept.any():
        raise ValueError("no clip has a (known) positive tag: mAR undefined")
    in_ranking = np.arange(scores.shape[1])[None, :] < num_known[:, None]
    recall_area = (hits * in_ranking).sum(1)[kept] / num_pos[kept] / num_known[kept]
    return {"mAR": 100.0 * float(np.mean(recall_area)), "skipped_clips": int((~kept).sum())}


def multilabel_metrics(scores: np.ndarray, targets: np.ndarray, mask: Optional[np.ndarray] = None) -> Dict[str, float]:
    """ROC-AUC, mAP (macro) and mAR of (N, C) scores against {0,1} targets, with skip counts."""
    return {**per_class_auc_map(scores, targets, mask), **mean_average_recall(scores, targets, mask)}


def zeroshot_metrics(
    audio: np.ndarray,
    prompt_text: Dict[str, np.ndarray],
    labels: np.ndarray,
    multi_label: bool = False,
    mask: Optional[np.ndarray] = None,
    select: Optional[str] = None,
    device: Device = "cpu",
) -> Dict[str, Union[str, Dict]]:
    """Metrics for each prompt and for the best prompt, chosen on these clips (``BEST_LABEL``).

    audio (N, D); prompt_text {prompt: (C, D) text embeddings of the prompt with each class}; labels (N,) class
    indices, or (N, C) {0,1} with ``multi_label``; mask (N, C) known labels (multi-label only). The best prompt
    is the one with the highest ``select`` metric (default: accuracy, or mAP for multi-label) on these same clips.
    The cosine scores are computed on ``device``, the metrics from them on the CPU.
    -> {"per_prompt": {prompt: metrics} (in ``prompt_text``'s order), "best_prompt": prompt, "best": its metrics,
    "select": metric name, "best_label": ``BEST_LABEL``}
    """
    if not prompt_text:
        raise ValueError("no prompt embeddings given")
    if mask is not None and not multi_label:
        raise ValueError("a label mask only applies to multi-label evaluation")
    select = select or ("mAP" if multi_label else "accuracy")
    per_prompt = {}
    for prompt, text in prompt_text.items():
        scores = cosine_scores(audio, text, device)  # (N, C)
        per_prompt[prompt] = multilabel_metrics(scores, labels, mask) if multi_label else accuracy(scores, labels)
    if select not in next(iter(per_prompt.values())):
        raise ValueError(f"cannot select the best prompt by {select!r}: metrics are {list(per_prompt[prompt])}")
    best = max(per_prompt, key=lambda p: per_prompt[p][select])
    return {
        "per_prompt": per_prompt,
        "best_prompt": best,
        "best": per_prompt[best],
        "select": select,
        "best_label": BEST_LABEL,
    }
