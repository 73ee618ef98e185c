"""A training run killed with SIGKILL in the middle of an epoch and resumed with --resume true ends with the
same models as an uninterrupted run: ESPnet resumes from the checkpoint of the last finished epoch and redoes
the interrupted one with that epoch's seeds (and, with --fresh_batches, that epoch's batches)."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import TINY_CONF, run_module
from test_train_cli import TRAIN, data_options

EPOCH2_PROGRESS = re.compile(r"2epoch:train:\d+-\d+batch")


def train_options(corpus: Path, bpe, exp: Path, fresh_batches: bool = False) -> list:
    return [
        "--config",
        TINY_CONF / "train_slap_tiny.yaml",
        "--normalize",
        "none",
        *data_options(corpus, bpe, "lazy_sound"),
        "--train_shape_file",
        f"{corpus}/train/utt2dur",
        "--valid_shape_file",
        f"{corpus}/valid/utt2dur",
        # 16 steps per epoch, a cosine tau schedule (so that tau depends on the restored update count), a
        # loader worker (seeded per epoch by ESPnet) and the random crops and caption draws of training
        "--batch_size",
        "2",
        "--num_workers",
        "1",
        "--max_epoch",
        "3",
        "--keep_nbest_models",
        "2",
        "--model_conf",
        "tau_schedule=cosine",
        "--model_conf",
        "tau_end=1.0",
        "--model_conf",
        "tau_total_steps=48",
        "--log_interval",
        "1",
        "--resume",
        "true",
        "--fresh_batches",  # batch contents redrawn each epoch from the seed and the epoch
        str(fresh_batches).lower(),
        "--output_dir",
        exp,
    ]


def kill_in_epoch_2(cmd: list, cwd: Path, log: Path) -> None:
    """Start training and SIGKILL it once it has logged a step of epoch 2."""
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT)
    deadline = time.time() + 240
    while not EPOCH2_PROGRESS.search(log.read_text()):
        assert proc.poll() is None, f"training ended before epoch 2:\n{log.read_text()[-3000:]}"
        assert time.time() < deadline, "no step of epoch 2 within 4 minutes"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def assert_same_tensors(a: dict, b: dict, what: str) -> None:
    assert a.keys() == b.keys(), what
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-7, msg=lambda m: f"{what} {key}: {m}")


@pytest.mark.slow
@pytest.mark.parametrize("fresh_batches", [False, True])
def test_killed_and_resumed_run_equals_an_uninterrupted_one(corpus, bpe, tmp_path, fresh_batches):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    run_module(TRAIN, *train_options(corpus, bpe, straight, fresh_batches), cwd=tmp_path)

    cmd = [sys.executable, "-m", TRAIN, *map(str, train_options(corpus, bpe, killed, fresh_batches))]
    kill_in_epoch_2(cmd, tmp_path, tmp_path / "killed.log")
    assert (killed / "1epoch.pth").exists() and not (killed / "2epoch.pth").exists(), "not killed inside epoch 2"
    resumed = run_module(TRAIN, *train_options(corpus, bpe, killed, fresh_batches), cwd=tmp_path).stderr
    assert ("fresh batches every epoch" in resumed) == fresh_batches
    assert "2/3epoch started" in resumed and "1/3epoch started" not in resumed

    averaged = sorted(p.name for p in straight.glob("*ave*.pth"))
    assert averaged and averaged == sorted(p.name for p in killed.glob("*ave*.pth"))
    for name in averaged:
        assert_same_tensors(load(straight / name), load(killed / name), name)
    final_straight, final_killed = load(straight / "checkpoint.pth"), load(killed / "checkpoint.pth")
    assert_same_tensors(final_straight["model"], final_killed["model"], "final model")  # EMA targets included
    assert int(final_killed["model"]["ema_updates"]) == 3 * 16
    for epoch in (2, 3):  # tau, losses and the other statistics (not timings) of the redone and the next epoch
        for phase in ("train", "valid"):
            stats = [
                {k: v for k, v in c["reporter"]["stats"][epoch][phase].items() if "time" not in k}
                for c in (final_straight, final_killed)
            ]
            assert "tau" in stats[0] and stats[0] == pytest.approx(stats[1], rel=1e-5), (epoch, phase)
