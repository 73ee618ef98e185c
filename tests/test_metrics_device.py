"""Every scorer takes a ``device``: on "cpu" through the argument they give today's figures (ranks equal to the
full-matrix reference, cosines equal to numpy's); on a GPU, when there is one, the same ranks and metrics."""

import numpy as np
import pytest
import torch
from test_probe import blobs
from test_retrieval_metrics import random_pairs, reference_ranks

from espnet2_slap.metrics.cosine import cosine_scores, unit_rows
from espnet2_slap.metrics.modality_gap import modality_gap
from espnet2_slap.metrics.probe import MLPProbe
from espnet2_slap.metrics.retrieval import retrieval_metrics, retrieval_ranks
from espnet2_slap.metrics.zeroshot import zeroshot_metrics
from espnet2_slap.prompts import PROMPTS

DEVICES = ["cpu", torch.device("cpu")] + [
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU"))
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("tied", [True, False])
def test_retrieval_ranks_on_a_device_equal_the_reference(device, tied):
    audio, text, text_audio = random_pairs(seed=3, num_audio=40, dim=4 if tied else 16, tied=tied)
    a2t, t2a = retrieval_ranks(torch.as_tensor(audio, device=device), text, text_audio, block_size=7, device=device)
    assert a2t.device.type == t2a.device.type == "cpu"
    ref_a2t, ref_t2a = reference_ranks(audio, text, text_audio)
    np.testing.assert_array_equal(a2t.numpy(), ref_a2t)
    np.testing.assert_array_equal(t2a.numpy(), ref_t2a)
    assert retrieval_metrics(audio, text, text_audio, 7, device=device) == retrieval_metrics(audio, text, text_audio, 7)


@pytest.mark.parametrize("device", DEVICES)
def test_zeroshot_and_cosines_on_a_device(device):
    rng = np.random.default_rng(0)
    audio, classes = rng.normal(size=(30, 8)), rng.normal(size=(5, 8))
    np.testing.assert_allclose(cosine_scores(audio, classes, device), unit_rows(audio) @ unit_rows(classes).T, 1e-12)
    prompts = {p: classes + rng.normal(scale=0.5, size=classes.shape) for p in PROMPTS}
    labels = rng.integers(0, 5, 30)
    assert zeroshot_metrics(audio, prompts, labels, device=device) == zeroshot_metrics(audio, prompts, labels)
    targets, mask = rng.integers(0, 2, (30, 5)), rng.random((30, 5)) > 0.2
    on_device = zeroshot_metrics(audio, prompts, targets, True, mask, device=device)
    on_cpu = zeroshot_metrics(audio, prompts, targets, True, mask)
    assert on_device["best_prompt"] == on_cpu["best_prompt"]
    for prompt in PROMPTS:
        assert on_device["per_prompt"][prompt] == pytest.approx(on_cpu["per_prompt"][prompt], rel=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_modality_gap_on_a_device(device):
    rng = np.random.default_rng(1)
    audio, text = rng.normal(size=(50, 6)), rng.normal(size=(60, 6)) + 1.0
    gap = modality_gap(audio, text, seed=0, device=device)
    assert gap == pytest.approx(modality_gap(audio, text, seed=0), rel=1e-12)
    assert gap["centroid_distance"] == pytest.approx(np.linalg.norm(unit_rows(audio).mean(0) - unit_rows(text).mean(0)))


@pytest.mark.parametrize("device", DEVICES)
def test_probe_on_a_device(device):
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = blobs(1, 120), blobs(2, 40), blobs(3, 60)
    probes = [
        MLPProbe(8, 3, hidden=32, max_epochs=8, patience=5, **kw).fit(x_tr, y_tr, x_va, y_va)
        for kw in ({}, {"device": device})
    ]
    assert probes[1].epochs_run == probes[0].epochs_run and probes[1].best_epoch == probes[0].best_epoch
    np.testing.assert_allclose(probes[1].scores(x_te), probes[0].scores(x_te), rtol=1e-5, atol=1e-6)
    assert probes[1].evaluate(x_te, y_te) == pytest.approx(probes[0].evaluate(x_te, y_te))
