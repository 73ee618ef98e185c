"""Training says when its figures cannot be trusted: a collapse of SLAP's projections (issue 13, item 9),
validation retrieval staying at chance (issue 23: the std cannot show a collapse when the projectors have
BatchNorm) and a validation set too small for model selection (item 8)."""

import math

import pytest
import torch
from conftest import tiny_args, tiny_model
from espnet2.train.reporter import SubReporter
from espnet2.train.trainer import Trainer

from espnet2_slap.metrics.inbatch import embedding_std
from espnet2_slap.tasks.slap import validation_size_warning
from espnet2_slap.train.learning_warnings import (
    CHANCE_EPOCHS,
    COLLAPSE_EPOCHS,
    COLLAPSE_FRACTION,
    chance_warning,
    collapse_warning,
    inbatch_chance,
)
from espnet2_slap.train.trainer import SLAPTrainer


def test_logged_std_is_one_over_sqrt_dim_when_spread_and_zero_when_collapsed():
    """The threshold is a fraction of what embedding_std gives for spread embeddings."""
    torch.manual_seed(0)
    spread = torch.randn(4096, 64)
    assert embedding_std(spread).item() == pytest.approx(1 / math.sqrt(64), rel=0.02)
    direction = torch.randn(64)
    collapsed = direction + 0.001 * torch.randn(4096, 64)
    assert embedding_std(collapsed).item() < COLLAPSE_FRACTION / math.sqrt(64)


def test_collapse_warning_needs_the_std_to_stay_under_the_threshold():
    spread, low = {"std_audio": 0.030, "std_text": 0.06}, {"std_audio": 0.006, "std_text": 0.06}
    assert collapse_warning(3, [spread] * 3, 64) is None
    assert collapse_warning(2, [low] * 2, 64) is None  # not yet COLLAPSE_EPOCHS epochs
    # the default mini_synth recipe's start: concentrated, then spreading out
    start = [{"std_audio": value, "std_text": 0.06} for value in (0.014, 0.010, 0.014, 0.021)]
    assert all(collapse_warning(n, start[:n], 64) is None for n in range(1, 5))
    assert collapse_warning(4, [spread, low, low], 64) is None
    warning = collapse_warning(5, [spread, low, low, {"std_audio": 0.005, "std_text": 0.06}], 64)
    assert f"possible collapse in the last {COLLAPSE_EPOCHS} epochs: std_audio 0.0060, 0.0060, 0.0050 (" in warning
    assert "std_text" not in warning
    assert "0.0125 = 0.1 / sqrt(64)" in warning and "1/sqrt(64) = 0.125" in warning


def test_trainer_warns_after_epochs_of_collapsed_projections(tmp_path, monkeypatch, caplog):
    _, model = tiny_model(tmp_path)

    def one_epoch(cls, model, reporter, **kwargs):  # ESPnet's loop, reduced to what it reports
        for std_audio in (0.007, 0.005):
            reporter.register({"std_audio": std_audio, "std_text": 0.06}, 16)
            reporter.next()
        return False

    monkeypatch.setattr(Trainer, "train_one_epoch", classmethod(one_epoch))
    monkeypatch.setattr(SLAPTrainer, "std_history", [])
    for epoch in range(1, COLLAPSE_EPOCHS + 1):
        assert "possible collapse" not in caplog.text
        SLAPTrainer.train_one_epoch(model=model, reporter=SubReporter("train", epoch, 0))
    assert (
        f"epoch {COLLAPSE_EPOCHS}: possible collapse in the last 3 epochs: std_audio 0.0060, 0.0060, 0.0060"
        in caplog.text
    )


def test_chance_level_is_batches_over_utterances():
    assert inbatch_chance([16, 16]) == pytest.approx(1 / 16)
    assert inbatch_chance([16, 4]) == pytest.approx(2 / 20)  # ESPnet weights each batch's R@1 by its size


def test_chance_warning_needs_retrieval_to_stay_at_chance():
    """Figures of the mini_synth runs of issue 23 (valid r1, mean of both directions; 2 batches of 16)."""
    chance = 1 / 16
    collapsed = [(v, chance) for v in (0.031, 0.078, 0.062, 0.031, 0.016, 0.062, 0.078, 0.031, 0.094, 0.047, 0.0)]
    learning = [(v, chance) for v in (0.125, 0.141, 0.188, 0.172, 0.203, 0.312, 0.281, 0.375, 0.312, 0.469, 0.328)]
    assert chance_warning(9, collapsed[:9]) is None  # not yet CHANCE_EPOCHS validations
    warning = chance_warning(10, collapsed[:10])
    assert f"validation retrieval at chance for the last {CHANCE_EPOCHS} epochs" in warning
    assert (
        "0.031, 0.078, 0.062, 0.031, 0.016, 0.062, 0.078, 0.031, 0.094, 0.047, average 0.053, under 1.5 x " in warning
    )
    assert "chance (0.062)" in warning
    assert chance_warning(11, collapsed) is not None
    assert all(chance_warning(n, learning[:n]) is None for n in range(1, 12))
    assert chance_warning(11, [*collapsed[:7], *learning[7:]]) is None  # it has started to learn
    assert chance_warning(10, [(0.5, 0.5)] * 10) is not None  # batches of 2: a learned model is near 1
    assert chance_warning(10, [(1.0, 1.0)] * 10) is None  # batches of 1: R@1 is always 1, nothing to tell


def test_trainer_warns_when_validation_retrieval_stays_at_chance(tmp_path, monkeypatch, caplog):
    def one_validation(cls, model, reporter, **kwargs):  # ESPnet's loop, reduced to what it reports
        for r1 in (0.0625, 0.0):
            reporter.register({"r1_a2t": r1, "r1_t2a": r1}, 16)
            reporter.next()

    monkeypatch.setattr(Trainer, "validate_one_epoch", classmethod(one_validation))
    monkeypatch.setattr(SLAPTrainer, "r1_history", [])
    for epoch in range(1, CHANCE_EPOCHS + 1):
        assert "at chance" not in caplog.text
        SLAPTrainer.validate_one_epoch(model=None, reporter=SubReporter("valid", epoch, 0))
    assert (
        f"epoch {CHANCE_EPOCHS}: validation retrieval at chance for the last 10 epochs: in-batch R@1 (mean of "
        f"r1_a2t and r1_t2a) {', '.join(['0.031'] * 10)}, average 0.031, under 1.5 x chance (0.062)" in caplog.text
    )


def write_list(path, n):
    path.write_text("".join(f"utt{i} /x/{i}.flac\n" for i in range(n)))
    return str(path)


def test_small_validation_set_warning(tmp_path):
    args = tiny_args(tmp_path)
    args.valid_data_path_and_name_and_type = [(write_list(tmp_path / "wav.scp", 5), "speech", "sound")]
    warning = validation_size_warning(args)
    assert "has 5 utterances, fewer than 100" in warning
    assert "valid r1_t2a (best_model_criterion) moves in steps of 1/5 = 0.2" in warning
    assert "the 3 best epochs" in warning
    args.best_model_criterion = [("valid", "epoch", "max")]  # the last epochs: nothing is ranked
    assert validation_size_warning(args) is None
    args.best_model_criterion = [("valid", "r1_t2a", "max")]
    args.valid_data_path_and_name_and_type = [(write_list(tmp_path / "wav.scp", 100), "speech", "sound")]
    assert validation_size_warning(args) is None
