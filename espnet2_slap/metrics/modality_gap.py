"""Modality gap between audio and text embeddings: linear separability, centroid distance, a UMAP picture.

SLAP's embeddings should be near 50 % separable (the two clouds overlap), CLAP's near 100 %.
"""

from pathlib import Path
from typing import Dict

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import train_test_split

from espnet2_slap.metrics.cosine import Device, unit_rows


def linear_separability(audio: np.ndarray, text: np.ndarray, seed: int = 0) -> float:
    """Held-out balanced accuracy (%) of a logistic regression telling (Na, D) audio from (Nt, D) text embeddings
    (L2-normalised first): 50 when the two clouds cannot be told apart, 100 when a plane splits them. Split: 80 %
    train / 20 % test, at random, stratified by modality, ``seed`` fixing both the split and the classifier (as
    the reference code's 80/20 random split, made repeatable).

    Balanced (classes weighted by their counts in the fit, the score the mean of the two recalls) because a test
    set has several captions a clip: with 2 a clip, plain accuracy is 66.7 % for a classifier that calls
    everything text, so an absent gap would read as a gap."""
    x = np.vstack([unit_rows(audio), unit_rows(text)])
    y = np.r_[np.zeros(len(audio)), np.ones(len(text))]
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, stratify=y, random_state=seed)
    classifier = LogisticRegression(max_iter=1000, class_weight="balanced", random_state=seed).fit(x_train, y_train)
    return 100.0 * balanced_accuracy_score(y_test, classifier.predict(x_test))


def centroid_distance(audio: np.ndarray, text: np.ndarray, device: Device = "cpu") -> float:
    """Euclidean distance between the means of the L2-normalised (Na, D) audio and (Nt, D) text embeddings
    (float64, on ``device``)."""
    centroids = [torch.as_tensor(unit_rows(x), device=device).mean(0) for x in (audio, text)]
    return float(torch.linalg.vector_norm(centroids[0] - centroids[1]))


def umap_picture(audio: np.ndarray, text: np.ndarray, png: Path, seed: int = 0, title: str = "") -> Path:
    """2-D UMAP (cosine metric, ``random_state=seed``) of both L2-normalised clouds, saved as a PNG scatter plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import umap

    x = np.vstack([unit_rows(audio), unit_rows(text)])
    reducer = umap.UMAP(n_components=2, metric="cosine", n_neighbors=min(15, len(x) - 1), random_state=seed, n_jobs=1)
    xy = reducer.fit_transform(x)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(*xy[: len(audio)].T, s=4, alpha=0.6, label=f"audio ({len(audio)})")
    ax.scatter(*xy[len(audio) :].T, s=4, alpha=0.6, label=f"text ({len(text)})")
    ax.set_title(title or "UMAP of L2-normalised embeddings")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(loc="best", markerscale=3)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return png


def modality_gap(audio: np.ndarray, text: np.ndarray, seed: int = 0, device: Device = "cpu") -> Dict[str, float]:
    """-> {"separability": % held-out accuracy, "centroid_distance": Euclidean, on the unit sphere}. The centroids
    are computed on ``device``; the logistic regression is sklearn's, on the CPU."""
    return {
        "separability": linear_separability(audio, text, seed),
        "centroid_distance": centroid_distance(audio, text, device),
    }
