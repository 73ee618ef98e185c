"""Training from Python with ESPnet-EZ (``espnetez``): ``task="slap"`` (espnet2_slap/tasks/ez.py) through the
example egs/mini_synth/slap1/ez_train.py, one epoch of SLAP from Kaldi data dirs and one of CLAP from in-memory
(waveform, caption) pairs; and, in this process, the registration and what a custom dataset goes through (our
preprocessor, our collate function)."""

import argparse
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import REPO, TINY_CONF

import espnet2_slap  # noqa: F401  (before espnetez is imported: ESPnet's imports kept offline, offline.py)

EXAMPLE = REPO / "egs" / "mini_synth" / "slap1" / "ez_train.py"


def run_example(*args, cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(EXAMPLE), *map(str, args)], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"ez_train.py failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-8000:]}")
    return proc


@pytest.mark.parametrize("model, dataset", [("slap", "kaldi"), ("clap", "pairs")])
def test_one_epoch_from_python(model, dataset, corpus, bpe, tmp_path):
    bpemodel, token_list = bpe
    exp = tmp_path / "exp"
    proc = run_example(
        "--config",
        TINY_CONF / f"train_{model}_tiny.yaml",
        "--dataset",
        dataset,
        "--data_dir",
        corpus,
        "--bpemodel",
        bpemodel,
        "--token_list",
        token_list,
        "--max_epoch",
        1,
        "--exp_dir",
        exp,
        cwd=tmp_path,
    )
    assert "nltk_data" not in proc.stderr  # the example imports our package before espnetez (offline.py)
    # collect_stats(): shapes of the 32 training clips, cropped to 1.5 s (ids "0".."31" for the pairs)
    shapes = [line.split() for line in (exp / "stats" / "train" / "speech_shape").read_text().splitlines()]
    assert len(shapes) == 32 and {s[1] for s in shapes} == {"24000"}
    assert (shapes[0][0] == "0") == (dataset == "pairs")
    stats_file = exp / "stats" / "train" / "feats_stats.npz"
    assert stats_file.exists()
    # train(): one epoch, with the statistics read from beside the shape files and recorded in config.yaml
    for name in ("1epoch.pth", "checkpoint.pth", "config.yaml"):
        assert (exp / name).exists(), name
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert config["model"] == model and config["max_epoch"] == 1
    assert config["normalize"] == "global_mvn" and config["normalize_conf"]["stats_file"] == str(stats_file)
    checkpoint = torch.load(exp / "checkpoint.pth", map_location="cpu", weights_only=False)
    epoch = checkpoint["reporter"]["stats"][1]
    assert math.isfinite(epoch["train"]["loss"]) and math.isfinite(epoch["valid"]["loss"])
    if model == "slap":
        assert int(checkpoint["model"]["ema_updates"]) == 32 // 16
    else:
        assert "logit_scale" in checkpoint["model"]
    # the model directory is one that inference reads, as a slap_train one
    from espnet2_slap.inference import AudioTextModel

    embedded = AudioTextModel.from_pretrained(exp / "config.yaml", exp / "1epoch.pth").embed_text(["a calm piano"])
    assert embedded and all(np.isfinite(v).all() for v in embedded.values())


def test_registration_and_the_custom_datasets_preprocessing(corpus, bpe, tmp_path, monkeypatch):
    from espnetez.task import TASK_CLASSES, get_ez_task

    from espnet2_slap.tasks import ez as slap_ez
    from espnet2_slap.tasks.slap import SLAPTask
    from espnet2_slap.train.skip_bad_audio import SKIPPED, SkipBadAudioCollateFn

    assert TASK_CLASSES["slap"] is slap_ez.EZSLAPTask and issubclass(slap_ez.EZSLAPTask, SLAPTask)
    assert slap_ez.register() is slap_ez.EZSLAPTask  # again: nothing changes
    monkeypatch.setitem(TASK_CLASSES, "slap", SLAPTask)
    with pytest.raises(ValueError, match="already has a task 'slap'"):
        slap_ez.register()
    monkeypatch.setitem(TASK_CLASSES, "slap", slap_ez.EZSLAPTask)

    bpemodel, token_list = bpe
    config = slap_ez.config_from_yaml(TINY_CONF / "train_clap_tiny.yaml", bpemodel=bpemodel, token_list=token_list)
    assert config["model"] == "clap" and config["bpemodel"] == bpemodel and "config" not in config

    # EZ's task for custom datasets has no preprocessor, so the dataset carries ours; EZ keeps our collate function
    ez_task = get_ez_task("slap", use_custom_dataset=True)
    args = argparse.Namespace(**config)
    assert ez_task.build_preprocess_fn(args, train=True) is None
    assert isinstance(ez_task.build_collate_fn(args, train=True), SkipBadAudioCollateFn)

    wav = (corpus / "train" / "wav.scp").read_text().split()[1]
    pairs = [
        (np.zeros(32000, dtype=np.float64), "a calm piano piece ||| solo piano"),
        ((np.ones((20000, 2)) * 16384).astype(np.int16), "loud organ"),  # short, 16-bit, stereo
        (wav, "a file"),
        (tmp_path / "gone.wav", "missing"),
    ]
    config["preprocessor_conf"] = {**config["preprocessor_conf"], "short_audio": "pad"}
    valid = slap_ez.from_pairs(pairs, config, train=False)
    assert len(valid) == 4 and valid.names() == ("speech", "text")
    uid, item = valid[0]
    assert uid == "0" and item["speech"].shape == (24000,) and item["speech"].dtype == np.float32
    np.testing.assert_array_equal(item["text"], valid.preprocess.tokenize("a calm piano piece"))  # the first
    _, item = valid[1]
    assert item["speech"].shape == (24000,) and item["speech"][0] == 0.5 and item["speech"][-1] == 0.0
    assert valid[2][1]["speech"].shape == (24000,)  # read from the file, crop only
    assert SKIPPED in valid[3][1]  # skipped and counted by the collate function, not an error
    train = slap_ez.from_pairs(pairs[:1], config, train=True)
    texts = {tuple(train[0][1]["text"]) for _ in range(20)}
    assert len(texts) == 2  # a random caption of the two each time
