"""Exact audio->text and text->audio retrieval metrics, computed in blocks (memory O(N x block), never N x N).

Scores are cosine similarities. Texts map to audio many-to-one (several captions per clip): an A->T query is
correct when any of its captions is retrieved, a T->A query has its one clip as the correct item.

Rank of a query = 1 + the number of *wrong* candidates scoring >= the best-scoring correct candidate (1-based).
Ties are pessimistic: a wrong candidate scoring exactly as much as the best correct one counts as ranked above it.
A wrong candidate identical to a correct one (the same caption given to two clips, the same clip under two ids)
ties with it exactly, whatever the rounding: such pairs are scored apart from the tiles, by the routine that
scores the true pairs, so identical rows give identical scores. Other ties are decided on the float32 scores as
computed (the thresholds come from dot products apart from the tiles' matrix products, so two scores equal in
exact arithmetic but made from different rows may differ by rounding, ~1e-7, and fall either way).

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


def _pair_scores(
    audio: torch.Tensor,
    text: torch.Tensor,
    text_scale: torch.Tensor,
    clips: torch.Tensor,
    texts: torch.Tensor,
    chunk: int,
) -> torch.Tensor:
    """(P,) cosine of each (clip, text) pair, ``chunk`` pairs at a time, all by one routine: pairs of identical rows
    score identically (bitwise), which the tiles' matrix products do not promise."""
    out = torch.empty(len(clips), device=audio.device)
    for p0 in range(0, len(clips), chunk):
        rows = slice(p0, p0 + chunk)
        out[rows] = (F.normalize(audio[clips[rows]], dim=-1) * text[texts[rows]]).sum(-1) * text_scale[texts[rows]]
    return out


def _identical_rows(x: torch.Tensor, chunk: int) -> torch.Tensor:
    """(N, D) -> (N,) group of each row: bitwise identical rows share one. Memory O(chunk x D): rows are hashed
    ``chunk`` at a time (their bits times fixed random weights), and only rows whose hash another row shares are
    compared in full (torch.unique would sort a copy of the whole matrix)."""
    weights = torch.randint(-(2**62), 2**62, (x.size(1),), generator=torch.Generator().manual_seed(0))
    weights = weights.to(x.device)
    hashes = torch.empty(x.size(0), dtype=torch.long, device=x.device)
    for r0 in range(0, x.size(0), chunk):
        bits = x[r0 : r0 + chunk].contiguous().view(torch.int32).long()
        hashes[r0 : r0 + chunk] = (bits * weights).sum(1)  # int64 arithmetic wraps around: still a hash
    _, slot, counts = torch.unique(hashes, return_inverse=True, return_counts=True)
    group = torch.arange(x.size(0), device=x.device)
    shared = (counts[slot] > 1).nonzero().squeeze(1)  # rows that may have an identical one
    group[shared] = x.size(0) + torch.unique(x[shared], dim=0, return_inverse=True)[1]
    return group


def _tied_pairs(
    text_audio: torch.Tensor, clip_group: torch.Tensor, text_group: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor]:
    """The wrong (clip, text) pairs that score exactly as a true pair: (S,) clips, (S,) texts.

    A text identical to a caption of another clip (equal ``text_group``) scores with that clip as the caption
    does; a clip identical to a text's own clip (equal ``clip_group``, given per text: its clip's) scores with
    the text as the own clip does. Either way: texts m and n in one group, of different clips, make the pair
    (clip of m, n). Groups of k texts make up to k^2 pairs; with no identical rows there are none."""
    device = text_audio.device
    clips, texts = [], []
    for group in (text_group, clip_group):
        order = torch.argsort(group, stable=True)
        sizes = torch.unique_consecutive(group[order], return_counts=True)[1]
        starts = torch.cumsum(sizes, 0) - sizes
        for start, size in zip(starts[sizes > 1].tolist(), sizes[sizes > 1].tolist()):
            members = order[start : start + size]
            owner = text_audio[members]  # (k,) the clip of each text of the group
            other = owner[:, None] != owner[None, :]  # (k, k): m's clip is not n's
            clips.append(owner[:, None].expand_as(other)[other])
            texts.append(members[None, :].expand_as(other)[other])
    if not clips:
        return torch.empty(0, dtype=torch.long, device=device), torch.empty(0, dtype=torch.long, device=device)
    # a pair made by both groups or by several texts of one clip is one pair
    keys = torch.unique(torch.cat(clips) * len(text_audio) + torch.cat(texts))
    return keys // len(text_audio), keys % len(text_audio)


@torch.no_grad()
def retrieval_ranks(
    audio: Matrix,
    text: Matrix,
    text_audio: Matrix,
    block_size: int = 256,
    device: Device = "cpu",
    text_block_size: int = 2048,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Exact 1-based ranks of the first correct item: (A, D), (T, D), (T,) -> A->T ranks (A,), T->A ranks (T,).

    ``text_audio[t]`` is the row in ``audio`` of text t's clip. The scores are made one (block_size,
    text_block_size) tile at a time, and each tile serves both directions: with its true pairs (and the wrong
    pairs of identical rows, which are counted apart) set to -inf, its scores at or above each clip's threshold
    (its best caption's score) add to the A->T counts, those at or above each text's (the score with its own clip)
    to the T->A counts. A tile of 256 x 2048 (2 MiB) stays in the CPU's cache for these passes, so they cost
    little beside the tile's matrix product. The inputs are not copied (float32 inputs on ``device`` are read in
    place): peak memory ~ inputs + a few tiles + O(A + T) (+ the pairs of identical rows: k^2 for k copies of one
    caption or clip), on ``device``. The ranks are returned on the CPU.
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
    counts = torch.bincount(text_audio, minlength=num_audio)
    if (counts == 0).any():
        raise ValueError(f"audio row {(counts == 0).nonzero()[0, 0].item()} has no text; every clip needs a caption")
    # Counting: a comparison written as 0./1. floats into a reused buffer, summed by a matrix product with ones,
    # is ~10x faster than bool tensors summed by torch and exact while counts stay below 2^24.
    if num_text >= 2**24:
        raise ValueError(f"{num_text} texts: counts from 2^24 on are not exact in float32")
    text_scale = text.norm(dim=1).clamp_min(1e-12).reciprocal()  # (T,): cosine = normalised audio . text * scale
    text_ids = torch.arange(num_text, device=device)

    own_score = _pair_scores(audio, text, text_scale, text_audio, text_ids, block_size)  # (T,) the T->A thresholds
    best = torch.full((num_audio,), -float("inf"), device=device)  # (A,) each clip's best caption: A->T threshold
    best.scatter_reduce_(0, text_audio, own_score, "amax")
    tied_clips, tied_texts = _tied_pairs(
        text_audio, _identical_rows(audio, block_size)[text_audio], _identical_rows(text, block_size)
    )

    # the pairs kept out of the tiles, the true ones and the tied ones (scored below), in order of their tile:
    # tile k = (audio block, text block) holds kept[bounds[k]:bounds[k + 1]]
    kept_clip, kept_text = torch.cat([text_audio, tied_clips]), torch.cat([text_ids, tied_texts])
    num_text_blocks = -(-num_text // text_block_size)
    tile_of = kept_clip // block_size * num_text_blocks + kept_text // text_block_size
    order = torch.argsort(tile_of)
    kept_clip, kept_text = kept_clip[order], kept_text[order]
    num_tiles = -(-num_audio // block_size) * num_text_blocks
    bounds = torch.searchsorted(tile_of[order], torch.arange(num_tiles + 1, device=device)).tolist()

    a2t_above = torch.zeros(num_audio, device=device)
    t2a_above = torch.zeros(num_text, device=device)
    rows, cols = min(block_size, num_audio), min(text_block_size, num_text)
    scores, hits = torch.empty(rows, cols, device=device), torch.empty(rows, cols, device=device)
    ones_cols, ones_rows = torch.ones(cols, device=device), torch.ones(rows, device=device)
    tile_index = 0
    for a0 in range(0, num_audio, block_size):
        a1 = min(a0 + block_size, num_audio)
        block, block_best = F.normalize(audio[a0:a1], dim=-1), best[a0:a1, None]
        for t0 in range(0, num_text, text_block_size):
            t1 = min(t0 + text_block_size, num_text)
            tile, tile_hits = scores[: a1 - a0, : t1 - t0], hits[: a1 - a0, : t1 - t0]
            torch.matmul(block, text[t0:t1].T, out=tile)
            tile.mul_(text_scale[t0:t1])
            kept = slice(bounds[tile_index], bounds[tile_index + 1])
            tile_index += 1
            if kept.stop > kept.start:
                tile[kept_clip[kept] - a0, kept_text[kept] - t0] = -float("inf")  # counted apart or never
            torch.ge(tile, block_best, out=tile_hits)
            a2t_above[a0:a1].addmv_(tile_hits, ones_cols[: t1 - t0])
            torch.ge(tile, own_score[t0:t1], out=tile_hits)
            t2a_above[t0:t1].addmv_(tile_hits.T, ones_rows[: a1 - a0])
    tied_score = _pair_scores(audio, text, text_scale, tied_clips, tied_texts, block_size)
    a2t_above.index_add_(0, tied_clips, (tied_score >= best[tied_clips]).float())
    t2a_above.index_add_(0, tied_texts, (tied_score >= own_score[tied_texts]).float())
    return (a2t_above.long() + 1).cpu(), (t2a_above.long() + 1).cpu()


def rank_summary(ranks: torch.Tensor, num_candidates: int) -> Dict[str, float]:
    """1-based ranks (Q,) -> R@1/5/10 (% of queries with rank <= k), MdNR and MNR (median / mean of
    rank / num_candidates, in %; the median of an even count is the mean of the two middle values)."""
    ranks = ranks.double().numpy()
    summary = {f"R@{k}": 100.0 * float(np.mean(ranks <= k)) for k in RECALL_AT}
    summary["MdNR"] = 100.0 * float(np.median(ranks)) / num_candidates
    summary["MNR"] = 100.0 * float(np.mean(ranks)) / num_candidates
    return summary


def retrieval_metrics(
    audio: Matrix,
    text: Matrix,
    text_audio: Matrix,
    block_size: int = 256,
    device: Device = "cpu",
    text_block_size: int = 2048,
) -> Dict[str, Dict[str, float]]:
    """(A, D), (T, D), (T,) -> {"A->T": {R@1, R@5, R@10, MdNR, MNR}, "T->A": {...}} (see ``retrieval_ranks``)."""
    a2t, t2a = retrieval_ranks(audio, text, text_audio, block_size, device, text_block_size)
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
