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
from espnet2_slap.train.trainer import COLLAPSE_FRACTION, SLAPTrainer, collapse_warning


def test_logged_std_is_one_over_sqrt_dim_when_spread_and_zero_when_collapsed():
    """The threshold is a fraction of what embedding_std gives for spread embeddings."""
    torch.manual_seed(0)
    spread = torch.randn(4096, 64)
    assert embedding_std(spread).item() == pytest.approx(1 / math.sqrt(64), rel=0.02)
    direction = torch.randn(64)
    collapsed = direction + 0.001 * torch.randn(4096, 64)
    assert embedding_std(collapsed).item() < COLLAPSE_FRACTION / math.sqrt(64)


def test_collapse_warning_threshold():
    assert collapse_warning(2, {"std_audio": 0.030, "std_text": 0.06}, 64) is None
    assert collapse_warning(1, {"std_audio": 0.006}, 64) is None  # the initialisation is not judged
    warning = collapse_warning(5, {"std_audio": 0.006, "std_text": 0.06}, 64)
    assert "possible collapse: std_audio 0.0060" in warning and "std_text" not in warning
    assert "0.0125 = 0.1 / sqrt(64)" in warning and "1/sqrt(64) = 0.125" in warning


def test_trainer_warns_after_an_epoch_of_collapsed_projections(tmp_path, monkeypatch, caplog):
    _, model = tiny_model(tmp_path)

    def one_epoch(cls, model, reporter, **kwargs):  # ESPnet's loop, reduced to what it reports
        for std_audio in (0.007, 0.005):
            reporter.register({"std_audio": std_audio, "std_text": 0.06}, 16)
            reporter.next()
        return False

    monkeypatch.setattr(Trainer, "train_one_epoch", classmethod(one_epoch))
    reporter = SubReporter("train", 3, 0)
    SLAPTrainer.train_one_epoch(model=model, reporter=reporter)
    assert "epoch 3: possible collapse: std_audio 0.0060" in caplog.text


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
    args.valid_data_path_and_name_and_type = [(write_list(tmp_path / "wav.scp", 100), "speech", "sound")]
    assert validation_size_warning(args) is None
