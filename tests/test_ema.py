"""SLAP's EMA targets: the update rule, its tau schedules, and when ESPnet's trainer runs it."""

import logging
import math

import pytest
import torch
from conftest import random_batch, tiny_model
from espnet2.train.distributed_utils import DistributedOption
from espnet2.train.reporter import Reporter
from espnet2.train.trainer import Trainer

from espnet2_slap.layers.ema import TauSchedule, ema_update_
from espnet2_slap.tasks.slap import SLAPTask


def target_params(model):
    return torch.cat(
        [p.detach().flatten() for p in (*model.audio_target.parameters(), *model.text_target.parameters())]
    )


def online_params(model):
    return torch.cat([p.detach().flatten() for p in (*model.audio_tower.parameters(), *model.text_tower.parameters())])


def test_ema_update_rule():
    torch.manual_seed(0)
    target, online = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    old = [p.clone() for p in target.parameters()]
    ema_update_(target, online, tau=0.9)
    for t, o, new in zip(old, online.parameters(), target.parameters()):
        torch.testing.assert_close(new, 0.9 * t + 0.1 * o)


def test_foreach_update_equals_one_lerp_per_tensor(tmp_path):
    """The fused update gives the values of the former loop of ``lerp_`` calls, on the tiny SLAP towers."""
    _, model = tiny_model(tmp_path, "slap")
    with torch.no_grad():
        for p in model.audio_tower.parameters():
            p.add_(torch.randn_like(p))
    looped = [
        t.clone().lerp_(o, 1.0 - 0.99) for t, o in zip(model.audio_target.parameters(), model.audio_tower.parameters())
    ]
    ema_update_(model.audio_target, model.audio_tower, tau=0.99)
    assert len(looped) > 10
    for expected, new in zip(looped, model.audio_target.parameters()):
        torch.testing.assert_close(new, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "schedule, expected",
    [
        ("constant", [0.99, 0.99, 0.99, 0.99]),
        ("linear", [0.99, 0.995, 1.0, 1.0]),
        ("cosine", [0.99, 0.995, 1.0, 1.0]),
    ],
)
def test_tau_schedules_go_from_tau_0_to_tau_1(schedule, expected):
    tau = TauSchedule(0.99, 1.0, schedule, total_steps=100)
    assert [tau(k) for k in (0, 50, 100, 150)] == pytest.approx(expected)
    if schedule == "cosine":  # slower than linear at the start
        assert tau(25) == pytest.approx(1.0 - 0.01 * (1 + math.cos(math.pi / 4)) / 2)


def test_tau_schedule_needs_its_length():
    with pytest.raises(ValueError, match="total_steps"):
        TauSchedule(0.99, 1.0, "cosine")


def test_cosine_schedule_length_derived_from_training_options(tmp_path):
    args, model = tiny_model(
        tmp_path,
        "slap",
        "--model_conf",
        "tau_schedule=cosine",
        "--num_iters_per_epoch",
        "10",
        "--max_epoch",
        "6",
        "--accum_grad",
        "2",
    )
    assert model.tau_schedule.total_steps == 30 and args.model_conf["tau_total_steps"] == 30


def test_one_optimizer_step_moves_targets_by_the_ema_rule(tmp_path):
    args, model = tiny_model(tmp_path, "slap")
    (optimizer,) = SLAPTask.build_optimizers(args, model)
    model(**random_batch(4))[0].backward()
    with torch.no_grad():  # targets apart from the context towers, so that the update is far above rounding
        for p in (*model.audio_target.parameters(), *model.text_target.parameters()):
            p.add_(0.1 * torch.randn_like(p))
    old_target = {n: p.clone() for n, p in model.named_parameters() if "_target." in n}
    optimizer.step()
    tau = args.model_conf["tau"]
    assert int(model.ema_updates) == 1
    for name, old in old_target.items():
        new_online = model.get_parameter(name.replace("_target.", "_tower."))
        torch.testing.assert_close(model.get_parameter(name), tau * old + (1 - tau) * new_online, rtol=1e-5, atol=1e-7)
    assert not torch.equal(target_params(model), online_params(model))
    assert all(p.grad is None and not p.requires_grad for n, p in model.named_parameters() if "_target." in n)


def run_one_epoch(args, model, batches):
    """ESPnet's Trainer.train_one_epoch over ``batches``; returns a snapshot of the targets before each
    forward and at the end."""
    (optimizer,) = SLAPTask.build_optimizers(args, model)
    snapshots = []
    model.register_forward_pre_hook(lambda module, inputs: snapshots.append(target_params(module)))
    reporter = Reporter()
    reporter.set_epoch(1)
    with reporter.observe("train") as sub_reporter:
        Trainer.train_one_epoch(
            model=model,
            iterator=[([f"utt{i}_{j}" for j in range(b["speech"].size(0))], b) for i, b in enumerate(batches)],
            optimizers=[optimizer],
            schedulers=[None],
            scaler=None,
            reporter=sub_reporter,
            summary_writer=None,
            options=Trainer.build_options(args),
            distributed_option=DistributedOption(),
        )
    return snapshots + [target_params(model)]


def test_targets_move_once_per_accumulated_step(tmp_path):
    args, model = tiny_model(tmp_path, "slap", "--accum_grad", "4")
    snaps = run_one_epoch(args, model, [random_batch(4, seed=i) for i in range(8)])
    changed = [not torch.equal(a, b) for a, b in zip(snaps[:-1], snaps[1:])]
    # snaps[i] is taken before micro-batch i + 1; the optimizer steps after micro-batches 4 and 8
    assert changed == [False, False, False, True, False, False, False, True]
    assert int(model.ema_updates) == 2
    assert all(p.grad is None for n, p in model.named_parameters() if "_target." in n)


def test_non_finite_loss_skips_the_step_and_the_ema(tmp_path, caplog):
    args, model = tiny_model(tmp_path, "slap")
    bad = random_batch(4, seed=1)
    bad["speech"][2, 100] = float("nan")
    online_after_first = []
    model.register_forward_pre_hook(lambda module, inputs: online_after_first.append(online_params(module)))
    with caplog.at_level(logging.WARNING):
        snaps = run_one_epoch(args, model, [random_batch(4, seed=0), bad])
    assert int(model.ema_updates) == 1
    assert torch.equal(snaps[1], snaps[2])  # targets after the NaN batch == after the first step
    assert torch.equal(online_after_first[1], online_params(model))
    assert "non-finite loss" in caplog.text and "utt1_2" in caplog.text
    assert "Skipping updating the model" in caplog.text


def test_ema_state_round_trips_through_state_dict(tmp_path):
    args, model = tiny_model(
        tmp_path, "slap", "--model_conf", "tau_schedule=linear", "--model_conf", "tau_total_steps=10"
    )
    model.ema_updates.fill_(5)
    with torch.no_grad():
        next(model.audio_target.parameters()).add_(1.0)
    _, restored = tiny_model(
        tmp_path, "slap", "--model_conf", "tau_schedule=linear", "--model_conf", "tau_total_steps=10"
    )
    restored.load_state_dict(model.state_dict())
    assert int(restored.ema_updates) == 5
    assert restored.tau == pytest.approx(0.995)  # tiny config: 0.99 -> 1.0 linearly over 10 updates
    torch.testing.assert_close(target_params(restored), target_params(model))


@pytest.mark.parametrize("updates, synced", [(0, True), (3, False)])
def test_targets_start_as_the_context_towers(tmp_path, updates, synced):
    """Weights loaded after build_model (--init_param) reach the targets of a fresh run, not of a resumed one."""
    _, model = tiny_model(tmp_path, "slap")
    model.ema_updates.fill_(updates)
    with torch.no_grad():  # as --init_param would, after the model (and its targets) were built
        for p in model.audio_tower.parameters():
            p.add_(1.0)
    before = target_params(model)
    model.train()
    model(**random_batch(2))
    assert torch.equal(target_params(model), online_params(model)) == synced
    assert torch.equal(target_params(model), before) != synced


def test_amp_grad_scaler_skipping_a_step_skips_the_ema(tmp_path):
    """Under AMP ESPnet steps through GradScaler, which does not call optimizer.step() on inf/nan gradients:
    the EMA hook then does not run either (CPU GradScaler, the same logic as CUDA's)."""
    args, model = tiny_model(tmp_path, "slap")
    (optimizer,) = SLAPTask.build_optimizers(args, model)
    scaler = torch.amp.GradScaler("cpu")
    for poison, expected_updates in ((True, 0), (False, 1)):
        scaler.scale(model(**random_batch(4))[0]).backward()
        if poison:
            next(model.audio_tower.parameters()).grad.view(-1)[0] = float("inf")
        before = target_params(model)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad()
        assert int(model.ema_updates) == expected_updates
        assert torch.equal(target_params(model), before) == poison
