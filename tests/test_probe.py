"""MLP probe: learns separable toy problems (single- and multi-label) and stops early."""

import numpy as np

from espnet2_slap.metrics.probe import MLPProbe


def blobs(seed: int, n: int, num_classes: int = 3, dim: int = 8):
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(0).normal(scale=4.0, size=(num_classes, dim))
    labels = rng.integers(0, num_classes, n)
    return centers[labels] + rng.normal(size=(n, dim)), labels


def test_single_label_probe_learns():
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = blobs(1, 120), blobs(2, 40), blobs(3, 60)
    probe = MLPProbe(8, 3, hidden=32, max_epochs=30, patience=5).fit(x_tr, y_tr, x_va, y_va)
    assert probe.evaluate(x_te, y_te)["accuracy"] >= 95.0


def test_early_stopping_keeps_the_best_epoch():
    """Labels unrelated to features: validation loss soon rises, training stops and the best weights are restored."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(80, 8)), rng.integers(0, 2, 80)
    probe = MLPProbe(8, 2, patience=3, max_epochs=300).fit(x[:60], y[:60], x[60:], y[60:])
    assert probe.epochs_run < 300 and probe.epochs_run == probe.best_epoch + 3
    # the same seeded run cut at the best epoch has the weights the stopped probe restored
    best_again = MLPProbe(8, 2, patience=3, max_epochs=probe.best_epoch).fit(x[:60], y[:60], x[60:], y[60:])
    np.testing.assert_allclose(probe.scores(x[60:]), best_again.scores(x[60:]), rtol=1e-5, atol=1e-6)


def test_multi_label_probe_learns():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(240, 8))
    targets = np.stack([x[:, 0] > 0, x[:, 1] > 0.5, x[:, 2] + x[:, 3] > 0], axis=1).astype(int)
    probe = MLPProbe(8, 3, multi_label=True, hidden=64, patience=10).fit(
        x[:160], targets[:160], x[160:200], targets[160:200]
    )
    result = probe.evaluate(x[200:], targets[200:])
    assert result["ROC-AUC"] >= 90.0 and result["skipped_classes"] == 0
    assert set(result) >= {"mAP", "mAR"}


def test_unknown_labels_neither_train_nor_score_the_multi_label_probe():
    """OpenMic-style partial labels: entries the mask marks unknown count for nothing, whatever value they hold."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 8))
    targets = np.stack([x[:, 0] > 0, x[:, 1] > 0.5, x[:, 2] + x[:, 3] > 0], axis=1).astype(int)
    known = rng.random(targets.shape) > 0.4
    wrong = np.where(known, targets, 1 - targets)  # unknown entries hold the wrong label ...
    zeros = np.where(known, targets, 0)  # ... or 0

    def fit(y, mask):
        return MLPProbe(8, 3, multi_label=True, hidden=64, patience=10).fit(
            x[:180],
            y[:180],
            x[180:240],
            y[180:240],
            None if mask is None else mask[:180],
            None if mask is None else mask[180:240],
        )

    masked_wrong, masked_zeros = fit(wrong, known), fit(zeros, known)
    np.testing.assert_allclose(masked_wrong.scores(x[240:]), masked_zeros.scores(x[240:]), rtol=1e-5, atol=1e-6)
    scored = masked_wrong.evaluate(x[240:], wrong[240:], known[240:])
    assert scored == masked_wrong.evaluate(x[240:], targets[240:], known[240:])
    assert scored["ROC-AUC"] >= 90.0
    unmasked = fit(wrong, None)  # without the mask the wrong labels train the probe, and it is worse
    assert unmasked.evaluate(x[240:], targets[240:], known[240:])["ROC-AUC"] < scored["ROC-AUC"]
