"""Training through ``python -m espnet2_slap.bin.slap_train`` as a user runs it: collect stats, train, average,
resume."""

from pathlib import Path
from typing import Optional

import pytest
import torch
from conftest import TINY_CONF, run_module

TRAIN = "espnet2_slap.bin.slap_train"


def data_options(corpus: Path, bpe, data_type: str = "sound", train_wav_scp: Optional[Path] = None) -> list:
    """Tokenizer and data options for the corpus's train and valid sets (another training wav.scp if given)."""
    bpemodel, token_list = bpe
    return [
        "--token_list",
        token_list,
        "--bpemodel",
        bpemodel,
        "--train_data_path_and_name_and_type",
        f"{train_wav_scp or corpus / 'train/wav.scp'},speech,{data_type}",
        "--train_data_path_and_name_and_type",
        f"{corpus}/train/text,text,text",
        "--valid_data_path_and_name_and_type",
        f"{corpus}/valid/wav.scp,speech,{data_type}",
        "--valid_data_path_and_name_and_type",
        f"{corpus}/valid/text,text,text",
    ]


@pytest.fixture(scope="module")
def stats_dir(corpus, bpe, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("stats")
    run_module(
        TRAIN,
        "--collect_stats",
        "true",
        "--config",
        TINY_CONF / "train_slap_tiny.yaml",
        "--normalize",
        "none",
        *data_options(corpus, bpe),
        "--train_shape_file",
        f"{corpus}/train/utt2dur",
        "--valid_shape_file",
        f"{corpus}/valid/utt2dur",
        "--output_dir",
        out,
        cwd=out,
    )
    return out


def test_help_and_print_config(tmp_path):
    help_text = run_module(TRAIN, "--help", cwd=tmp_path).stdout
    for option in ("--audio_encoder", "--text_encoder_conf", "--preprocessor_conf", "--collect_stats"):
        assert option in help_text
    config = run_module(TRAIN, "--print_config", "--model", "clap", cwd=tmp_path).stdout
    assert "model: clap" in config and "init_temperature: 0.1" in config


def test_collect_stats_writes_shapes_and_feature_statistics(stats_dir, corpus):
    import numpy as np

    speech_shape = (stats_dir / "train" / "speech_shape").read_text().split("\n")
    assert len([line for line in speech_shape if line]) == 32
    assert speech_shape[0].split()[1] == "24000"  # 2-s clips cropped to 1.5 s at 16 kHz (centred)
    stats = np.load(stats_dir / "train" / "feats_stats.npz")
    assert stats["sum"].shape == (64,) and stats["count"] > 0


@pytest.mark.parametrize("model", ["slap", "clap"])
def test_train_average_and_resume(model, corpus, bpe, stats_dir, tmp_path):
    exp = tmp_path / "exp"
    common = [
        "--config",
        TINY_CONF / f"train_{model}_tiny.yaml",
        *data_options(corpus, bpe),
        "--normalize_conf",
        f"stats_file={stats_dir}/train/feats_stats.npz",
        "--train_shape_file",
        f"{stats_dir}/train/speech_shape",
        "--valid_shape_file",
        f"{stats_dir}/valid/speech_shape",
        "--output_dir",
        exp,
        "--keep_nbest_models",
        "2",
    ]
    first = run_module(TRAIN, *common, "--max_epoch", "2", cwd=tmp_path)
    assert "valid/wav.scp) has 8 utterances, fewer than 100: valid r1_t2a" in first.stderr  # model selection
    for name in ("1epoch.pth", "2epoch.pth", "checkpoint.pth", "config.yaml"):
        assert (exp / name).exists(), name
    averaged = sorted(exp.glob("*ave*best.pth"))
    assert averaged, list(exp.iterdir())
    steps_per_epoch = 32 // 16
    checkpoint = torch.load(exp / "checkpoint.pth", map_location="cpu", weights_only=False)
    if model == "slap":
        assert int(checkpoint["model"]["ema_updates"]) == 2 * steps_per_epoch
        assert any(k.startswith("audio_target.") for k in checkpoint["model"])
        assert any(k.startswith("text_target.") for k in checkpoint["model"])
    else:
        assert "logit_scale" in checkpoint["model"]

    second = torch.load(exp / "2epoch.pth", map_location="cpu", weights_only=True)  # resuming may prune it
    resumed = run_module(TRAIN, *common, "--max_epoch", "3", "--resume", "true", cwd=tmp_path)
    log = resumed.stderr
    assert "3/3epoch started" in log and "1/3epoch started" not in log and "2/3epoch started" not in log
    assert (exp / "3epoch.pth").exists()
    third = torch.load(exp / "3epoch.pth", map_location="cpu", weights_only=True)
    if model == "slap":  # the update count came back from checkpoint.pth and went on
        assert int(third["ema_updates"]) == 3 * steps_per_epoch
        moved = [not torch.equal(second[k], third[k]) for k in second if k.startswith("audio_target.")]
        assert all(moved)


def test_training_skips_a_missing_and_a_truncated_file_naming_and_counting_them(corpus, bpe, tmp_path):
    """Two bad files of 32 in a lazy_sound training list, read by 2 loader workers: training runs to the end, and
    the log names each (id and path) and counts both."""
    import soundfile as sf

    data = tmp_path / "train"
    data.mkdir()
    lines = (corpus / "train" / "wav.scp").read_text().splitlines()
    (missing_uid, _), (cut_uid, cut_source) = lines[3].split(), lines[7].split()
    missing, truncated = tmp_path / "gone.wav", tmp_path / "cut.wav"
    wave, fs = sf.read(cut_source)
    sf.write(truncated, wave[: len(wave) // 2], fs)  # 1 s of 2: every 1.5-s crop runs past its end
    paths = {uid: path for uid, path in (line.split() for line in lines)}
    num_samples = {uid: sf.info(path).frames for uid, path in paths.items()}  # what stage 2 recorded
    paths.update({missing_uid: str(missing), cut_uid: str(truncated)})
    (data / "wav.scp").write_text("".join(f"{uid} {path}\n" for uid, path in paths.items()))
    (data / "utt2num_samples").write_text("".join(f"{uid} {n}\n" for uid, n in num_samples.items()))
    proc = run_module(
        TRAIN,
        "--config",
        TINY_CONF / "train_slap_tiny.yaml",
        "--normalize",
        "none",
        *data_options(corpus, bpe, "lazy_sound", data / "wav.scp"),
        "--train_shape_file",
        f"{corpus}/train/utt2dur",
        "--valid_shape_file",
        f"{corpus}/valid/utt2dur",
        "--num_workers",
        "2",
        "--max_epoch",
        "1",
        "--output_dir",
        tmp_path / "exp",
        cwd=tmp_path,
    )
    log = proc.stderr
    assert (tmp_path / "exp" / "1epoch.pth").exists()
    assert f"skipping utterance {missing_uid}: missing audio file: {missing} does not exist" in log
    assert f"skipping utterance {cut_uid}: unreadable audio file: {truncated}: truncated" in log
    assert "after training this epoch: utterances skipped for a bad audio file so far: train 2" in log
    assert "training finished; utterances skipped for a bad audio file: train 2" in log
