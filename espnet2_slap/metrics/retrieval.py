"""Exact audio->text and text->audio retrieval metrics, computed in blocks (memory O(N x block), never N x N).

Scores are cosine similarities. Texts map to audio many-to-one (several captions per clip): an A->T query is
correct when any of its captions is retrieved, a T->A query has its one clip as the correct item.

Rank of a query = 1 + the number of *wrong* candidates scoring >= the best-scoring correct candidate (1-based).
Ties are pessimistic: a wrong candidate scoring exactly as much as the best correct one counts as ranked above it.
Ties are decided on the float32 scores as computed; a T->A threshold (the score of a text with its own clip) is
computed by a dot product apart from the block matmul, so two scores equal in exact arithmetic may differ by
rounding (~1e-7) and fall either way. Inputs whose products and sums are exact in float32 tie exactly.

Everything runs on ``device`` (a torch device: "cpu", "cuda", ...); the inputs are moved there, the ranks come back
on the CPU.

Normalised rank = rank / number of candidates, in % (lower is better). Unlike the reference code, which divides by
the largest rank observed, we divide by the number of candidates, so figures do not depend on the worst query.
"""

import warnings
from typing import Dict, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

Matrix = Union[np.ndarray, torch.Tensor]
Device = Union[str, torch.device]
RECALL_AT = (1, 5, 10)


def _float_matrix(x: Matrix, name: str, device: torch.device) -> torch.Tensor:
    """(N, D) float32 tensor on ``device``, sharing memory with ``x`` when it already is float32 there (a read-only
    memory map of embeddings too: it is only read, so torch's warning about non-writable arrays is silenced)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        x = torch.as_tensor(x, dtype=torch.float32, device=device)
    if x.dim() != 2 or x.size(0) == 0:
        raise ValueError(f"{name} embeddings must be a non-empty (N, D) matrix, got shape {tuple(x.shape)}")
    return x


def _captions_per_audio(text_audio: torch.Tensor, num_audio: int) -> torch.Tensor:
    """(T,) audio index of each text -> (A, K) text indices of each audio, padded with -1 (K = most captions)."""
    counts = torch.bincount(text_audio, minlength=num_audio)
    if (counts == 0).any():
        missing = (counts == 0).nonzero()[0, 0].item()
        raise ValueError(f"audio row {missing} has no text; every clip needs at least one caption")
    order = torch.argsort(text_audio, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(len(order), device=text_audio.device) - starts[text_audio[order]]
    table = torch.full((num_audio, int(counts.max())), -1, dtype=torch.long, device=text_audio.device)
    table[text_audio[order], slot] = order
    return table


@torch.no_grad()
def retrieval_ranks(
    audio: Matrix, text: Matrix, text_audio: Matrix, block_size: int = 256, device: Device = "cpu"
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Exact 1-based ranks of the first correct item: (A, D), (T, D), (T,) -> A->T ranks (A,), T->A ranks (T,).

    ``text_audio[t]`` is the row in ``audio`` of text t's clip. One pass over blocks of ``block_size`` audio rows
    serves both directions: each block's (block, T) scores give its A->T ranks and add to the T->A counts.
    The inputs are not copied (float32 inputs on ``device`` are read in place): peak memory ~ inputs + a few
    (block, T) arrays, on ``device``. The ranks are returned on the CPU.
    """
    device = torch.device(device)
    audio, text = _float_matrix(audio, "audio", device), _float_matrix(text, "text", device)
    text_audio = torch.as_tensor(text_audio, dtype=torch.long, device=device)
    num_audio, num_text = audio.size(0), text.size(0)
    if audio.size(1) != text.size(1):
        raise ValueError(f"audio dim {audio.size(1)} != text dim {text.size(1)}")
    if text_audio.shape != (num_text,):
        raise ValueError(f"text_audio must have one entry per text ({num_text}), got shape {tuple(text_audio.shape)}")
    if text_audio.min() < 0 or text_audio.max() >= num_audio:
        raise ValueError(
            f"text_audio values must be audio rows in [0, {num_audio}), got "
            f"[{text_audio.min().item()}, {text_audio.max().item()}]"
        )
    captions = _captions_per_audio(text_audio, num_audio)
    text_scale = text.norm(dim=1).clamp_min(1e-12).reciprocal()  # (T,): cosine = normalised audio . text * scale

    own_score = torch.empty(num_text, device=device)  # (T,) cosine of each text with its own clip: the T->A threshold
    for t0 in range(0, num_text, block_size):
        rows = slice(t0, t0 + block_size)
        own_audio = F.normalize(audio[text_audio[rows]], dim=-1)
        own_score[rows] = (own_audio * text[rows]).sum(-1) * text_scale[rows]

    texts_by_audio = torch.argsort(text_audio, stable=True)
    first_text = torch.searchsorted(
        text_audio[texts_by_audio], torch.arange(0, num_audio + block_size, block_size, device=device)
    ).tolist()
    a2t_above = torch.empty(num_audio, dtype=torch.long, device=device)
    t2a_above = torch.zeros(num_text, dtype=torch.long, device=device)
    # Counting: a comparison written as 0./1. floats into a reused buffer, summed by a matrix product with ones,
    # is ~10x faster than bool tensors summed by torch and exact while counts stay below 2^24.
    if max(num_text, block_size) >= 2**24:
        raise ValueError(f"{num_text} texts: counts from 2^24 on are not exact in float32")
    above = torch.empty(min(block_size, num_audio), num_text, device=device)
    ones_text, ones_block = torch.ones(num_text, 1, device=device), torch.ones(
        1, min(block_size, num_audio), device=device
    )
    for b, a0 in enumerate(range(0, num_audio, block_size)):
        a1 = min(a0 + block_size, num_audio)
        scores = (F.normalize(audio[a0:a1], dim=-1) @ text.T).mul_(text_scale)  # (b, T)
        hits = above[: a1 - a0]
        # A->T: wrong captions scoring >= the best true caption
        true_idx = captions[a0:a1]
        true_scores = scores.gather(1, true_idx.clamp_min(0)).masked_fill_(true_idx < 0, -float("inf"))
        best = true_scores.amax(1, keepdim=True)
        torch.ge(scores, best, out=hits)
        a2t_above[a0:a1] = (hits @ ones_text).squeeze(1).long() - (true_scores >= best).sum(1)
        # T->A: clips of this block scoring >= each text's own clip, less the own clip itself
        torch.ge(scores, own_score, out=hits)
        t2a_above += (ones_block[:, : a1 - a0] @ hits).squeeze(0).long()
        own = texts_by_audio[first_text[b] : first_text[b + 1]]
        t2a_above[own] -= hits[text_audio[own] - a0, own].long()
    return (a2t_above + 1).cpu(), (t2a_above + 1).cpu()


def rank_summary(ranks: torch.Tensor, num_candidates: int) -> Dict[str, float]:
    """1-based ranks (Q,) -> R@1/5/10 (% of queries with rank <= k), MdNR and MNR (median / mean of
    rank / num_candidates, in %; the median of an even count is the mean of the two middle values)."""
    ranks = ranks.double().numpy()
    summary = {f"R@{k}": 100.0 * float(np.mean(ranks <= k)) for k in RECALL_AT}
    summary["MdNR"] = 100.0 * float(np.median(ranks)) / num_candidates
    summary["MNR"] = 100.0 * float(np.mean(ranks)) / num_candidates
    return summary


def retrieval_metrics(
    audio: Matrix, text: Matrix, text_audio: Matrix, block_size: int = 256, device: Device = "cpu"
) -> Dict[str, Dict[str, float]]:
    """(A, D), (T, D), (T,) -> {"A->T": {R@1, R@5, R@10, MdNR, MNR}, "T->A": {...}} (see ``retrieval_ranks``)."""
    a2t, t2a = retrieval_ranks(audio, text, text_audio, block_size, device)
    return {"A->T": rank_summary(a2t, len(t2a)), "T->A": rank_summary(t2a, len(a2t))}


def chance_retrieval(text_audio: Matrix, num_audio: int) -> Dict[str, Dict[str, float]]:
    """The figures ``retrieval_metrics`` gives in expectation for random scores (no ties): the chance level.

    T->A: the one true clip is equally likely at each of the A ranks. A->T: a clip with c of the T captions has
    its first true caption at rank j with probability C(T - j, c - 1) / C(T, c); the clips' distributions are
    mixed. R@k and MNR are expectations, MdNR the median of that distribution (in %, like ``rank_summary``)."""
    from scipy.special import gammaln

    counts = np.bincount(np.asarray(text_audio, dtype=np.int64), minlength=num_audio)
    num_text = int(counts.sum())
    ranks = np.arange(1, num_text + 1)

    def log_comb(n: np.ndarray, k: int) -> np.ndarray:
        return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)

    a2t = np.zeros(num_text)
    for c, clips in zip(*np.unique(counts, return_counts=True)):
        possible = ranks <= num_text - c + 1
        prob = np.zeros(num_text)
        prob[possible] = np.exp(log_comb(num_text - ranks[possible], c - 1) - log_comb(np.array(num_text), c))
        a2t += clips * prob / num_audio
    t2a = np.full(num_audio, 1.0 / num_audio)

    def summary(prob: np.ndarray) -> Dict[str, float]:
        cdf, n = np.cumsum(prob), len(prob)
        figures = {f"R@{k}": 100.0 * float(cdf[min(k, n) - 1]) for k in RECALL_AT}
        figures["MdNR"] = 100.0 * float(np.searchsorted(cdf, 0.5 - 1e-12) + 1) / n
        figures["MNR"] = 100.0 * float(np.dot(prob, np.arange(1, n + 1))) / n
        return figures

    return {"A->T": summary(a2t), "T->A": summary(t2a)}
