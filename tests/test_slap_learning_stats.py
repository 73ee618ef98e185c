"""What SLAP logs to tell learning from collapse, the predictors' own learning rate, and our loss and EMA against
the SLAP reference's formulation (written from its description in the method notes, not its code)."""

import pytest
import torch
from conftest import random_batch, tiny_args, tiny_model

from espnet2_slap.layers.ema import ema_update_
from espnet2_slap.losses.byol import inter_modal_loss, intra_modal_loss
from espnet2_slap.tasks.slap import SLAPTask

LEARNING_STATS = (
    "std_audio_pred",
    "std_text_pred",
    "r1_a2t_proj",
    "r1_t2a_proj",
    "target_dist_audio",
    "target_dist_text",
)


def test_slap_reports_prediction_spread_projection_recall_and_target_distance(tmp_path):
    _, model = tiny_model(tmp_path, "slap")
    model.train()
    _, stats, _ = model(**random_batch(6))
    assert set(LEARNING_STATS) <= set(stats)
    # the first forward of a fresh run copies the towers into the targets: no distance yet (dropout aside, which
    # the target, a copy in train mode too, draws apart: hence a bound, not zero)
    first = stats["target_dist_audio"].item()
    assert -1e-6 <= first < 1e-4  # the audio tower has no dropout (rounding may dip under 0)
    for p in model.audio_tower.parameters():
        p.data.add_(0.1 * torch.randn_like(p))
    _, stats, _ = model(**random_batch(6))
    assert stats["target_dist_audio"].item() > first + 1e-3  # the online tower moved, its target did not
    for name in ("std_audio_pred", "std_text_pred"):
        assert 0.0 < stats[name].item() < 1.0
    assert 0.0 <= stats["r1_a2t_proj"].item() <= 1.0


def optimizer_of(tmp_path, model_name: str, *extra: str):
    args = tiny_args(tmp_path, model_name, *extra)
    model = SLAPTask.build_model(args)
    return model, SLAPTask.build_optimizers(args, model)[0]


def test_predictor_lr_scale_gives_the_predictors_a_group_of_their_own(tmp_path):
    model, optimizer = optimizer_of(tmp_path, "slap", "--predictor_lr_scale", "10")
    lrs = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    base = optimizer.defaults["lr"]
    for part, lr in ((model.audio_predictor, 10 * base), (model.text_predictor, 10 * base), (model.audio_tower, base)):
        assert [lrs[id(p)] for p in part.parameters()] == pytest.approx([lr] * len(list(part.parameters())))
    assert len(lrs) == sum(1 for _ in model.parameters())  # every parameter once
    _, plain = optimizer_of(tmp_path, "slap", "--predictor_lr_scale", "1")
    assert len(plain.param_groups) == 1


def test_predictor_lr_scale_on_clap_is_refused(tmp_path):
    with pytest.raises(ValueError, match="has no predictors"):
        optimizer_of(tmp_path, "clap", "--predictor_lr_scale", "10")


def reference_loss(q_audio, q_text, z_audio_ema, z_text_ema, ssl_weight):
    """The reference's call as the notes describe it: its loss(q_a, q_t, z~_a, z~_t) = w * inter + (1 - w) *
    intra, called with q_a and q_t swapped."""
    qa, qt = q_text, q_audio  # the swap of its training step

    def d(q, z):
        return (2 - 2 * torch.nn.functional.cosine_similarity(q, z, dim=-1)).mean()

    inter = (d(qa, z_text_ema) + d(qt, z_audio_ema)) / 2
    intra = (d(qa, z_audio_ema) + d(qt, z_text_ema)) / 2
    return ssl_weight * inter + (1 - ssl_weight) * intra


@pytest.mark.parametrize("lambda_inter", [0.2, 0.5, 0.7])
def test_our_loss_is_the_reference_loss_at_the_paper_lambda_only(lambda_inter):
    """At lambda 0.5 (the paper's and the reference configs') the reference's swapped call is our loss; elsewhere
    its weight falls on the other term: our lambda w is its 1 - w."""
    g = torch.Generator().manual_seed(0)
    terms = [torch.randn(8, 16, generator=g) for _ in range(4)]
    ours = lambda_inter * inter_modal_loss(*terms) + (1 - lambda_inter) * intra_modal_loss(*terms)
    torch.testing.assert_close(reference_loss(*terms, 1 - lambda_inter), ours)
    if lambda_inter != 0.5:
        assert not torch.isclose(reference_loss(*terms, lambda_inter), ours)


def test_our_ema_is_the_reference_update_on_parameters_only():
    torch.manual_seed(0)
    online = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4))
    target = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4))
    target[1].running_mean.fill_(3.0)
    expected = [0.9 * t.detach().clone() + 0.1 * o.detach() for t, o in zip(target.parameters(), online.parameters())]
    ema_update_(target, online, 0.9)
    for got, want in zip(target.parameters(), expected):
        torch.testing.assert_close(got, want)
    assert torch.all(target[1].running_mean == 3.0)  # buffers keep their own statistics
