"""Model selection that cannot hide learning: the trainer's ``valid epoch`` statistic (ESPnet's own averaging of
the last epochs), the recipe's rule (auto: the last epochs below 100 validation clips), stage 6's record
``<exp>/model_selection.json`` and the paragraph that opens RESULTS.md."""

import json
import os
from contextlib import nullcontext

import pytest
import torch
import yaml
from conftest import TINY_CONF, run_module
from espnet2.train.reporter import Reporter
from test_train_cli import TRAIN, data_options

from espnet2_slap.evaluation.report import results_markdown
from espnet2_slap.train.model_selection import choose_rule, read_record, selection_record
from espnet2_slap.train.trainer import reporting_epoch

SELECT = "espnet2_slap.bin.slap_model_selection"


def validate(reporter: Reporter, epoch: int, with_epoch: bool) -> dict:
    """One validation epoch as ESPnet's trainer runs it (register the batch's weighted stats, then next())."""
    reporter.set_epoch(epoch)
    with reporter.observe("valid") as sub:
        with reporting_epoch(sub) if with_epoch else nullcontext():
            for weight, loss in ((16, 0.3), (16, 0.5), (5, 0.9)):
                sub.register({"loss": loss, "r1_t2a": 1 / weight}, weight)
                sub.next()
        counts = (sub.count, sub.total_count)
    stats = reporter.stats[epoch]["valid"]
    return {"counts": counts, **{k: v for k, v in stats.items() if k != "time"}}


@pytest.mark.filterwarnings("ignore:The stats of the previous epoch")  # one epoch 7 alone
def test_the_epoch_stat_is_the_epoch_and_leaves_the_other_stats_alone():
    plain, with_epoch = validate(Reporter(), 7, False), validate(Reporter(), 7, True)
    assert with_epoch.pop("epoch") == 7.0
    assert with_epoch == plain  # the same loss, r1_t2a, counts and total_count


def write_exp(exp, criterion, keep, r1_t2a, max_epoch=None):
    """An exp dir as training leaves it: config.yaml, and checkpoint.pth whose reporter holds valid r1_t2a (one
    value an epoch) and valid epoch."""
    exp.mkdir(parents=True)
    epochs = len(r1_t2a)
    config = {"best_model_criterion": [criterion], "keep_nbest_models": keep, "max_epoch": max_epoch or epochs}
    (exp / "config.yaml").write_text(yaml.safe_dump(config))
    reporter = Reporter()
    for epoch, value in enumerate(r1_t2a, 1):
        reporter.set_epoch(epoch)
        reporter.stats[epoch] = {"valid": {"r1_t2a": value, "epoch": float(epoch)}}
    torch.save({"model": {}, "reporter": reporter.state_dict()}, exp / "checkpoint.pth")
    return exp


def valid_list(path, clips):
    path.write_text("".join(f"utt{i} /data/utt{i}.flac\n" for i in range(clips)))
    return path


def test_auto_takes_the_last_epochs_below_100_validation_clips(tmp_path):
    config = ("valid", "r1_t2a", "max")
    small, large = choose_rule("auto", config, 32), choose_rule("auto", config, 100)
    assert (small.name, small.criterion, small.model_file) == ("last", ("valid", "epoch", "max"), "valid.epoch.ave.pth")
    assert small.why == "the validation set has 32 clips, fewer than 100, too few to rank epochs"
    assert (large.name, large.model_file) == ("config", "valid.r1_t2a.ave.pth")
    train_config = tmp_path / "train.yaml"
    train_config.write_text(yaml.safe_dump({"best_model_criterion": [list(config)]}))
    cmd = ["rule", "--train_config", train_config, "--valid_list", valid_list(tmp_path / "wav.scp", 32)]
    printed = run_module(SELECT, *cmd, cwd=tmp_path).stdout
    assert printed == f"last\tvalid.epoch\tvalid,epoch,max\t{small.why}\n"
    proc = run_module(SELECT, *cmd[:-1], tmp_path / "none.scp", cwd=tmp_path, check=False)
    assert proc.returncode != 0 and f"{tmp_path / 'none.scp'}: no such file" in proc.stderr


def test_the_record_of_each_rule(tmp_path):
    r1_t2a = [0.1, 0.5, 0.2, 0.5, 0.3]
    exp = write_exp(tmp_path / "exp", ["valid", "r1_t2a", "max"], 2, r1_t2a, max_epoch=30)
    large = valid_list(tmp_path / "wav.scp", 150)
    config = exp / "config.yaml"  # as given to training
    best = selection_record(exp, "auto", config, large)
    assert best == {
        "model_file": "valid.r1_t2a.ave.pth",
        "rule": "config",
        "criterion": "valid.r1_t2a",
        "epochs": [2, 4],  # ties keep the epochs' order, as ESPnet's sort
        "values": [0.5, 0.5],
        "epochs_trained": 5,
        "max_epoch": 30,
        "valid_utterances": 150,
        "reason": "the 2 best of 5 epochs by valid r1_t2a (max), the config's best_model_criterion: the validation "
        "set has 150 clips, at least 100, enough to rank epochs.",
    }
    given = selection_record(exp, "auto", config, large, inference_model="3epoch.pth")
    assert (given["rule"], given["criterion"], given["epochs"], given["values"]) == ("inference_model", None, [3], [])
    other = selection_record(exp, "auto", config, large, inference_model="mine.pth")
    assert other["epochs"] == [] and "not an epoch's model file (<N>epoch.pth)" in other["reason"]
    with pytest.raises(ValueError, match=rf"{exp / 'config.yaml'}: the model was trained with best_model_criterion "):
        selection_record(exp, "last", config, large)  # trained by r1_t2a: there is no valid.epoch.ave.pth


def test_a_bad_record_names_its_file(tmp_path):
    record = tmp_path / "model_selection.json"
    assert read_record(record) is None
    record.write_text('{"rule": "last"}')
    with pytest.raises(ValueError, match=rf"{record}: not a model selection record \(no model_file, criterion"):
        read_record(record)


def record(epochs_trained: int) -> dict:
    last = list(range(epochs_trained, epochs_trained - 3, -1))
    return {
        "model_file": "valid.epoch.ave.pth",
        "rule": "last",
        "criterion": "valid.epoch",
        "epochs": last,
        "values": [float(e) for e in last],
        "epochs_trained": epochs_trained,
        "max_epoch": epochs_trained,
        "valid_utterances": 32,
        "reason": f"the last 3 of {epochs_trained} epochs: the validation set has 32 clips, fewer than 100, too few "
        "to rank epochs.",
    }


def test_a_longer_run_never_gives_the_results_md_of_a_shorter_one(tmp_path):
    """Even with the same figures (the same averaged model): RESULTS.md names the epochs trained and averaged."""
    results = {"test": {}}
    short, long = (results_markdown(results, tmp_path, "valid.epoch.ave.pth", "0" * 64, record(n)) for n in (30, 100))
    assert short != long
    assert "- epochs trained: 100 (max_epoch 100)" in long and "- rule: last (model file `valid.epoch.ave.pth`)" in long
    assert "- epochs averaged: 100, 99, 98 (valid.epoch: 100, 99, 98)" in long
    assert "- why: the last 3 of 100 epochs: the validation set has 32 clips, fewer than 100" in long
    other = results_markdown(results, tmp_path, "1epoch.pth", "0" * 64, record(30))
    assert "the model scored, `1epoch.pth`, is not the one stage 6 selected (`valid.epoch.ave.pth`)" in other
    assert "The model was trained elsewhere" in results_markdown(results, tmp_path, "x.pth", "0" * 64, None)


def test_training_with_the_last_epochs_rule_keeps_and_averages_them(corpus, bpe, tmp_path):
    """slap_train with --best_model_criterion valid,epoch,max (what slap.sh --model_selection last gives): the
    trainer reports valid epoch, ESPnet averages the last keep_nbest_models epochs and keeps only them, and stage
    6's record names them."""
    exp = tmp_path / "exp"
    train = run_module(
        TRAIN,
        *("--config", TINY_CONF / "train_slap_tiny.yaml", "--normalize", "none", *data_options(corpus, bpe)),
        *("--train_shape_file", corpus / "train/utt2dur", "--valid_shape_file", corpus / "valid/utt2dur"),
        *("--max_epoch", "3", "--keep_nbest_models", "2", "--best_model_criterion", "valid,epoch,max"),
        *("--output_dir", exp),
        cwd=tmp_path,
    )
    assert "3epoch results: " in train.stderr and "epoch=3.000" in train.stderr
    assert yaml.safe_load((exp / "config.yaml").read_text())["best_model_criterion"] == [["valid", "epoch", "max"]]
    assert os.readlink(exp / "valid.epoch.ave.pth") == "valid.epoch.ave_2best.pth"
    assert sorted(p.name for p in exp.glob("*epoch.pth")) == ["2epoch.pth", "3epoch.pth"]
    reporter = Reporter()
    reporter.load_state_dict(torch.load(exp / "checkpoint.pth", map_location="cpu", weights_only=False)["reporter"])
    assert [reporter.stats[e]["valid"]["epoch"] for e in (1, 2, 3)] == [1.0, 2.0, 3.0]

    given = [
        "--exp",
        exp,
        "--train_config",
        TINY_CONF / "train_slap_tiny.yaml",
        "--valid_list",
        corpus / "valid/wav.scp",
    ]
    printed = run_module(SELECT, "record", *given, cwd=tmp_path).stdout
    assert printed.startswith("valid.epoch.ave.pth (last): the last 2 of 3 epochs: the validation set has 8 clips")
    assert json.loads((exp / "model_selection.json").read_text()) == {
        "model_file": "valid.epoch.ave.pth",
        "rule": "last",
        "criterion": "valid.epoch",
        "epochs": [3, 2],
        "values": [3.0, 2.0],
        "epochs_trained": 3,
        "max_epoch": 3,
        "valid_utterances": 8,
        "reason": "the last 2 of 3 epochs: the validation set has 8 clips, fewer than 100, too few to rank epochs.",
    }
    proc = run_module(SELECT, "record", *given, "--model_selection", "config", cwd=tmp_path, check=False)
    assert proc.returncode != 0 and f"{exp / 'config.yaml'}: the model was trained with" in proc.stderr
