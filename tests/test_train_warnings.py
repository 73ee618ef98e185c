"""Training says when its figures cannot be trusted: a collapse of SLAP's projections (issue 13, item 9) and a
validation set too small for model selection (item 8)."""

import math

import pytest
import torch
from conftest import tiny_args, tiny_model
from espnet2.train.reporter import SubReporter
from espnet2.train.trainer import Trainer

from espnet2_slap.metrics.inbatch import embedding_std
from espnet2_slap.tasks.slap import validation_size_warning
from espnet2_slap.train.trainer import COLLAPSE_EPOCHS, COLLAPSE_FRACTION, SLAPTrainer, collapse_warning


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
