"""egs/openmic: a miniature openmic-2018 dir (npz with partial labels, class map, partitions, ogg audio, bad keys),
local/data.sh and stage 2, and the default recipe's model scored on it: multi-label zero-shot with the label mask
and the MLP probe (stage 8, conf/score.yaml)."""

import json

import numpy as np
import pytest
from test_corpus_common import kaldi, recipe_copy, run_corpus_recipe, skipped, write_audio

from espnet2_slap.corpora.openmic import INSTRUMENTS

# key: {instrument: Y_true} of the known labels (the others unknown, Y_true 0.5 as in OpenMIC)
LABELS = {
    "000046_3840": {"piano": 0.9, "voice": 0.0},
    "000135_483840": {"guitar": 1.0, "piano": 0.1},
    "000144_30720": {"voice": 0.8, "drums": 0.6},
    "000178_3840": {"piano": 0.7, "guitar": 0.2},
    "000139_119040": {"piano": 0.95, "voice": 0.0},
    "000141_153600": {"guitar": 0.9, "drums": 0.0},
    "000404_0": {"voice": 0.9},
    "000308_61440": {"piano": 0.9, "voice": 0.1},
    "000312_184320": {"piano": 0.0, "voice": 1.0},
    "000320_0": {"piano": 0.2, "drums": 0.7},
    "000321_3840": {"piano": 0.0, "guitar": 0.4},
    "000500_0": {"piano": 1.0},  # in no partition
    "000501_0": {},  # no known label
    "000502_0": {"voice": 1.0},  # no audio
}
TRAIN = [
    "000046_3840",
    "000135_483840",
    "000144_30720",
    "000178_3840",
    "000139_119040",
    "000141_153600",
    "000404_0",
    "000999_0000",
    "000501_0",
]
TEST = ["000308_61440", "000312_184320", "000320_0", "000321_3840", "000502_0"]


def make_corpus(root):
    keys = list(LABELS) + ["000046_3840"]  # a repeated key
    y_true = np.full((len(keys), 20), 0.5, dtype=np.float32)
    y_mask = np.zeros((len(keys), 20), dtype=bool)
    for i, key in enumerate(keys):
        for name, value in LABELS[key].items():
            y_true[i, INSTRUMENTS.index(name)], y_mask[i, INSTRUMENTS.index(name)] = value, True
    root.mkdir(parents=True)
    np.savez(
        root / "openmic-2018.npz",
        X=np.zeros((len(keys), 10, 128), dtype=np.uint8),
        Y_true=y_true,
        Y_mask=y_mask,
        sample_key=np.array(keys),
    )
    (root / "class-map.json").write_text(json.dumps({name: i for i, name in enumerate(INSTRUMENTS)}))
    (root / "partitions").mkdir()
    (root / "partitions/split01_train.csv").write_text("".join(f"{k}\n" for k in TRAIN))
    (root / "partitions/split01_test.csv").write_text("".join(f"{k}\n" for k in TEST))
    for i, key in enumerate(k for k in LABELS if k != "000502_0"):
        write_audio(root / "audio" / key[:3] / f"{key}.ogg", 1.5, 44100, seed=i)
    return root


def test_recipe_prepares_the_masked_labels(tmp_path):
    corpus = make_corpus(tmp_path / "openmic")
    recipe = recipe_copy(tmp_path, "openmic")
    run_corpus_recipe(recipe, {"OPENMIC": str(corpus)}, "--stop_stage", "2", "--local_data_opts", "--valid_percent 44")
    data = recipe / "data"
    assert kaldi(data / "test/utt2instruments") == {
        "000308_61440": "piano",
        "000312_184320": "voice",
        "000320_0": "drums",
        "000321_3840": "",
    }
    assert kaldi(data / "test/utt2known") == {
        "000308_61440": "piano voice",
        "000312_184320": "piano voice",
        "000320_0": "drums piano",
        "000321_3840": "guitar piano",
    }
    assert kaldi(data / "test/text") == {
        "000308_61440": "piano",
        "000312_184320": "voice",
        "000320_0": "drums",
        "000321_3840": "music",
    }
    assert kaldi(data / "train/utt2instruments") == {
        "000046_3840": "piano",
        "000135_483840": "guitar",
        "000144_30720": "drums voice",
        "000178_3840": "piano",
    }
    assert kaldi(data / "valid/utt2instruments") == {
        "000139_119040": "piano",
        "000141_153600": "guitar",
        "000404_0": "voice",
    }
    assert kaldi(data / "test/wav.scp")["000320_0"] == str(corpus / "audio/000/000320_0.ogg")
    assert (data / "test/instruments.classes").read_text().split() == INSTRUMENTS
    assert skipped(data, "openmic") == {
        "openmic-2018.npz:sample_key[14]": "duplicate id",
        "split01_train.csv:8": "not in the npz",
        "split01_train.csv:9": "no known label",
        "split01_test.csv:5": "missing audio file",
    }
    assert kaldi(recipe / "dump/raw/test/utt2known") == kaldi(data / "test/utt2known")


@pytest.mark.slow
def test_zero_shot_and_probe_of_the_default_recipe_model(tmp_path, packed_model):
    corpus = make_corpus(tmp_path / "openmic")
    recipe = recipe_copy(tmp_path, "openmic")
    run_corpus_recipe(
        recipe,
        {"OPENMIC": str(corpus)},
        "--packed_model",
        str(packed_model),
        "--test_sets",
        "train valid test",
        "--local_data_opts",
        "--valid_percent 44",
    )
    exp = recipe / "exp/slap_pretrained"
    results = json.loads((exp / "results.json").read_text())
    best = results["test"]["zero_shot"]["utt2instruments (known: utt2known)"]["best"]
    assert set(best) == {"ROC-AUC", "mAP", "skipped_classes", "mAR", "skipped_clips"}
    assert best["skipped_classes"] == 18 and best["skipped_clips"] == 1  # piano, voice have + and -; 000321 no +
    probe = results["test"]["probe"]["utt2instruments (known: utt2known)"]
    assert probe["splits"] == ["train", "valid", "test"] and 0 <= probe["test"]["mAR"] <= 100
    assert "utt2instruments" not in str(results["train"]["zero_shot"])  # zero-shot on test only (conf/score.yaml)
    md = (exp / "RESULTS.md").read_text()
    assert "| utt2instruments (known: utt2known) | 20 |" in md and "- utt2instruments (known: utt2known) (repr" in md
