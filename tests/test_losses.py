"""The loss formulas of SLAP (BYOL regression) and CLAP (symmetric InfoNCE) against hand-computed values."""

import math

import pytest
import torch
from conftest import random_batch, tiny_model

from espnet2_slap.losses.byol import inter_modal_loss, intra_modal_loss, regression_distance
from espnet2_slap.losses.infonce import symmetric_infonce
from espnet2_slap.tasks.slap import SLAPTask

Q_AUDIO = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
Q_TEXT = torch.tensor([[1.0, 1.0], [3.0, 0.0]])
TARGET_AUDIO = torch.tensor([[1.0, 0.0], [0.0, -1.0]])
TARGET_TEXT = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
R2 = math.sqrt(2.0)


def test_regression_distance_is_two_minus_two_cosine():
    d = regression_distance(
        torch.tensor([[2.0, 0.0], [1.0, 1.0], [0.0, 1.0]]), torch.tensor([[5.0, 0.0], [1.0, 0.0], [0.0, -3.0]])
    )
    torch.testing.assert_close(d, torch.tensor([0.0, 2.0 - R2, 4.0]))


def test_inter_and_intra_modal_losses_by_hand():
    # inter: d(q_a, z~_t) = [2, 2], d(q_t, z~_a) = [2 - sqrt2, 2]  -> (2 + 2 - sqrt2/2) / 2
    # intra: d(q_a, z~_a) = [0, 4], d(q_t, z~_t) = [2 - sqrt2, 0]  -> (2 + 1 - sqrt2/2) / 2
    terms = (Q_AUDIO, Q_TEXT, TARGET_AUDIO, TARGET_TEXT)
    assert inter_modal_loss(*terms).item() == pytest.approx(2.0 - R2 / 4)
    assert intra_modal_loss(*terms).item() == pytest.approx(1.5 - R2 / 4)


@pytest.mark.parametrize("lambda_inter", [0.0, 0.3, 1.0])
def test_slap_total_loss_weights_inter_and_intra_by_lambda(tmp_path, lambda_inter):
    """lambda=1 keeps only the inter-modal terms, lambda=0 only the intra-modal ones."""
    _, model = tiny_model(tmp_path, "slap", "--model_conf", f"lambda_inter={lambda_inter}")
    loss, stats, weight = model(**random_batch(4))
    expected = lambda_inter * stats["loss_inter"] + (1 - lambda_inter) * stats["loss_intra"]
    torch.testing.assert_close(loss.detach(), expected)
    assert not torch.isclose(stats["loss_inter"], stats["loss_intra"])  # so the weighting is visible
    assert weight.item() == 4


def test_symmetric_infonce_by_hand():
    """Two orthogonal pairs at scale s: each row's cross-entropy is log(1 + exp(-s)), both directions."""
    z = torch.eye(2)
    a2t, t2a = symmetric_infonce(3.0 * z, z, torch.tensor(5.0))
    assert a2t.item() == pytest.approx(math.log1p(math.exp(-5.0)))
    assert t2a.item() == pytest.approx(math.log1p(math.exp(-5.0)))


def test_symmetric_infonce_directions_differ_when_asymmetric():
    z_audio = torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0]])
    z_text = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    a2t, t2a = symmetric_infonce(z_audio, z_text, torch.tensor(10.0))
    sim = 10.0 * torch.nn.functional.normalize(z_audio, dim=-1) @ torch.nn.functional.normalize(z_text, dim=-1).T
    labels = torch.arange(3)
    torch.testing.assert_close(a2t, torch.nn.functional.cross_entropy(sim, labels))
    torch.testing.assert_close(t2a, torch.nn.functional.cross_entropy(sim.T, labels))
    assert not torch.isclose(a2t, t2a)


def test_clap_temperature_is_learnable(tmp_path):
    _, model = tiny_model(tmp_path, "clap", "--model_conf", "init_temperature=0.1")
    loss, stats, _ = model(**random_batch(4))
    assert stats["temperature"].item() == pytest.approx(0.1)
    loss.backward()
    assert model.logit_scale.grad is not None and model.logit_scale.grad.item() != 0.0


def test_clap_temperature_is_clamped_in_place_after_each_step_and_keeps_its_gradient(tmp_path):
    """As LAION-CLAP: steps pushing logit_scale past log(100) leave it at the limit (T = 0.01), where the loss
    still gives it gradient, so a loss pulling it back moves it below the limit again."""
    args, model = tiny_model(tmp_path, "clap", "--optim", "sgd", "--optim_conf", "lr=1.0")
    optimizer = SLAPTask.build_optimizers(args, model)[0]
    limit = torch.tensor(math.log(100.0))  # float32, as the parameter
    for _ in range(3):  # each step adds 10 to logit_scale before the clamp
        optimizer.zero_grad()
        (-10.0 * model.logit_scale).backward()
        optimizer.step()
        assert model.logit_scale.item() == limit.item()
    optimizer.zero_grad()
    loss, stats, _ = model(**random_batch(4))
    assert stats["temperature"].item() == pytest.approx(0.01)
    loss.backward()
    assert model.logit_scale.grad.item() != 0.0  # the contrastive loss reaches the parameter at the limit
    optimizer.zero_grad()
    (model.logit_scale - 1.0).square().backward()  # a loss that pulls the temperature back up
    assert model.logit_scale.grad.item() > 0.0
    optimizer.step()
    assert model.logit_scale.item() < limit.item()
