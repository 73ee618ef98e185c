"""Blocked retrieval metrics equal a full-matrix + sort reference (ties included) and hand-computed figures."""

import numpy as np
import pytest
import torch

from espnet2_slap.metrics.retrieval import rank_summary, retrieval_metrics, retrieval_ranks


def sorted_ranks(scores: np.ndarray, is_true: np.ndarray, wrong_first: bool = True) -> np.ndarray:
    """Reference: sort each row by score, on ties wrong items before true ones (or after: ``wrong_first=False``);
    1 + position of the first true item."""
    ranks = []
    for row, true in zip(scores, is_true):
        order = np.lexsort((true if wrong_first else ~true, -row))  # by -score, then the tie order
        ranks.append(int(np.argmax(true[order])) + 1)
    return np.array(ranks)


def reference_ranks(audio: np.ndarray, text: np.ndarray, text_audio: np.ndarray):
    """Ranks from the whole (A, T) matrix in float64, made from the distinct rows: identical rows tie exactly."""
    (a, a_row), (t, t_row) = (np.unique(x.astype(np.float64), axis=0, return_inverse=True) for x in (audio, text))
    a, t = a / np.linalg.norm(a, axis=1, keepdims=True), t / np.linalg.norm(t, axis=1, keepdims=True)
    scores = (a @ t.T)[a_row.ravel()][:, t_row.ravel()]  # (A, T), all of it
    is_true = text_audio[None, :] == np.arange(len(audio))[:, None]
    return sorted_ranks(scores, is_true), sorted_ranks(scores.T, is_true.T)


def random_pairs(seed: int, num_audio: int, dim: int, tied: bool):
    """Clips with 1 to 3 captions each; ``tied``: +-1 entries in few dimensions (exact in float32, many ties)."""
    rng = np.random.default_rng(seed)
    text_audio = rng.permutation(np.repeat(np.arange(num_audio), rng.integers(1, 4, num_audio)))
    draw = (lambda n: rng.choice([-1.0, 1.0], size=(n, dim))) if tied else (lambda n: rng.normal(size=(n, dim)))
    return draw(num_audio).astype(np.float32), draw(len(text_audio)).astype(np.float32), text_audio


@pytest.mark.parametrize("tied,dim", [(True, 4), (True, 16), (False, 16)])
@pytest.mark.parametrize("block_size,text_block_size", [(1, 1), (7, 5), (7, 2048), (1000, 13)])
def test_blocked_ranks_equal_full_matrix_reference(tied, dim, block_size, text_block_size):
    audio, text, text_audio = random_pairs(seed=dim + block_size, num_audio=45, dim=dim, tied=tied)
    a2t, t2a = retrieval_ranks(audio, text, text_audio, block_size=block_size, text_block_size=text_block_size)
    ref_a2t, ref_t2a = reference_ranks(audio, text, text_audio)
    np.testing.assert_array_equal(a2t.numpy(), ref_a2t)
    np.testing.assert_array_equal(t2a.numpy(), ref_t2a)
    if tied and dim == 4:  # ties occur and decide ranks: the optimistic order would give other ones
        a = audio / np.linalg.norm(audio, axis=1, keepdims=True)
        t = text / np.linalg.norm(text, axis=1, keepdims=True)
        optimistic = sorted_ranks(a @ t.T, text_audio[None, :] == np.arange(len(audio))[:, None], wrong_first=False)
        assert (optimistic < a2t.numpy()).any()


@pytest.mark.parametrize("seed", range(5))
def test_identical_captions_and_clips_tie_whatever_the_rounding(seed):
    """Real-valued embeddings where some clips share a caption, some clips are copies of others and some clips have
    a caption twice: a wrong caption equal to a clip's best one, or a copy of a text's own clip, ranks above it
    (pessimistic ties), as in the float64 reference, though the tiles' float32 products round otherwise."""
    audio, text, text_audio = random_pairs(seed=seed, num_audio=120, dim=512, tied=False)
    text = text + 2 * audio[text_audio]  # captions near their clips: the ranks are mostly small, so ties decide
    rng = np.random.default_rng(seed)
    for src, dst in rng.choice(len(text), size=(15, 2), replace=False):
        text[dst] = text[src]  # the same caption for two clips (or twice for one)
    for src, dst in rng.choice(len(audio), size=(10, 2), replace=False):
        audio[dst] = audio[src]  # one clip under two ids
    a2t, t2a = retrieval_ranks(audio, text, text_audio, block_size=32, text_block_size=64)
    ref_a2t, ref_t2a = reference_ranks(audio, text, text_audio)
    np.testing.assert_array_equal(a2t.numpy(), ref_a2t)
    np.testing.assert_array_equal(t2a.numpy(), ref_t2a)
    assert (ref_t2a > 1).mean() > 0.1  # the copies of clips moved many texts' ranks


def test_hand_computed_example():
    # scores (rows a0, a1; columns t0, t1, t2):  a0: 0 1 1   a1: 1 0 0;   t0, t1 -> a0, t2 -> a1
    audio = np.array([[1, 0], [0, 1]], dtype=np.float32)
    text = np.array([[0, 2], [3, 0], [1, 0]], dtype=np.float32)  # norms differ: cosine, not dot product
    a2t, t2a = retrieval_ranks(audio, text, [0, 0, 1], block_size=1)
    assert a2t.tolist() == [2, 3]  # a0: t2 ties its best caption t1 (pessimistic); a1: t0 and t1 tie or beat t2
    assert t2a.tolist() == [2, 1, 2]
    m = retrieval_metrics(audio, text, [0, 0, 1])
    assert m["A->T"] == pytest.approx(
        {"R@1": 0.0, "R@5": 100.0, "R@10": 100.0, "MdNR": 100 * 2.5 / 3, "MNR": 100 * 2.5 / 3}
    )
    assert m["T->A"] == pytest.approx(
        {"R@1": 100 / 3, "R@5": 100.0, "R@10": 100.0, "MdNR": 100.0, "MNR": 100 * (5 / 3) / 2}
    )


def test_rank_summary_thresholds_and_normalisation():
    m = rank_summary(torch.tensor([1, 5, 6, 10, 11]), num_candidates=20)
    assert m == pytest.approx({"R@1": 20.0, "R@5": 40.0, "R@10": 80.0, "MdNR": 100 * 6 / 20, "MNR": 100 * 6.6 / 20})


@pytest.mark.parametrize(
    "text_audio,message",
    [
        ([0, 0, 0], "audio row 1 has no text"),
        ([0, 1], "one entry per text"),
        ([0, 1, 2], r"audio rows in \[0, 2\)"),
    ],
)
def test_bad_mapping_is_named(text_audio, message):
    with pytest.raises(ValueError, match=message):
        retrieval_ranks(np.ones((2, 3)), np.ones((3, 3)), text_audio)


def test_no_square_matrix_is_made(monkeypatch):
    """Every score tile the pass makes has at most block_size rows and text_block_size columns."""
    shapes = []
    real_matmul = torch.matmul
    monkeypatch.setattr(
        torch, "matmul", lambda a, b, **kw: shapes.append((len(a), len(b.T))) or real_matmul(a, b, **kw)
    )
    audio, text, text_audio = random_pairs(seed=0, num_audio=50, dim=8, tied=False)
    retrieval_ranks(audio, text, text_audio, block_size=16, text_block_size=32)
    assert shapes and max(s[0] for s in shapes) <= 16 and max(s[1] for s in shapes) <= 32
