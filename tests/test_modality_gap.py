"""Modality gap: far-apart clouds are separable with a large centroid distance; one distribution is not."""

import numpy as np
import pytest

from espnet2_slap.metrics.modality_gap import centroid_distance, modality_gap, umap_picture


def clouds(shift: float, n: int = 200, dim: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    audio = rng.normal(size=(n, dim))
    text = rng.normal(size=(n, dim))
    text[:, 0] += shift
    audio[:, 0] -= shift
    return audio, text


def test_far_apart_clouds_are_separable():
    gap = modality_gap(*clouds(shift=10.0))
    assert gap["separability"] >= 97.5
    assert gap["centroid_distance"] > 1.5  # near 2: the clouds sit at opposite poles of the unit sphere


def test_one_distribution_is_not_separable():
    gap = modality_gap(*clouds(shift=0.0))
    assert 35.0 <= gap["separability"] <= 65.0
    assert gap["centroid_distance"] < 0.2


def test_one_distribution_with_two_captions_a_clip_is_not_separable():
    """Twice as many text embeddings as audio ones (the recipes' test sets): still about 50, not the 66.7 % of
    calling everything text."""
    audio, _ = clouds(shift=0.0, n=150, seed=1)
    _, text = clouds(shift=0.0, n=300, seed=2)
    assert 35.0 <= modality_gap(audio, text)["separability"] <= 60.0


def test_centroid_distance_by_hand():
    # unit circle: audio centroid (1, 0), text centroid (0, 0.5)
    audio = np.array([[2.0, 0.0], [1.0, 0.0]])
    text = np.array([[0.0, 3.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    assert centroid_distance(audio, text) == pytest.approx(np.hypot(1.0, 0.5))


def test_umap_png_is_written(tmp_path):
    png = umap_picture(*clouds(shift=3.0, n=100), tmp_path / "gap" / "umap.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
