"""slap_score end to end: each subcommand on small embedding dirs written here, and bad input named."""

import json

import numpy as np
import pytest
from conftest import REPO, run_module

from espnet2_slap.prompts import PROMPTS


def write_embeddings(directory, name, ids, matrix):
    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / f"{name}.npy", np.asarray(matrix, dtype=np.float32))
    (directory / f"{name}.ids").write_text("".join(f"{i}\n" for i in ids))


@pytest.fixture
def data(tmp_path):
    """8 clips in 2 genres (4 rock, then 4 jazz), two captions each, prompt embeddings near the genre centroids."""
    rng = np.random.default_rng(0)
    audio = rng.normal(size=(8, 6))
    audio[:4, 0] += 4.0  # rock
    audio[4:, 1] += 4.0  # jazz
    clips = [f"clip{i}" for i in range(8)]
    texts = [f"{c}-{k}" for c in clips for k in (0, 1)]
    text = np.repeat(audio, 2, axis=0) + 0.01 * rng.normal(size=(16, 6))
    emb = tmp_path / "emb"
    write_embeddings(emb, "audio_projection", clips, audio)
    write_embeddings(emb, "text_projection", texts, text)
    (tmp_path / "text2audio").write_text("".join(f"{t} {t.split('-')[0]}\n" for t in texts))
    genres = ["rock" if i < 4 else "jazz" for i in range(8)]
    (tmp_path / "labels").write_text("".join(f"{c} {g}\n" for c, g in zip(clips, genres)))
    prompts = [f"{p}:{g}" for p in range(len(PROMPTS)) for g in ("jazz", "rock")]
    centroid = {g: audio[[i for i in range(8) if genres[i] == g]].mean(0) for g in ("jazz", "rock")}
    write_embeddings(
        tmp_path / "prompts",
        "prompt_projection",
        prompts,
        [centroid[p.split(":")[1]] + 0.01 * rng.normal(size=6) for p in prompts],
    )
    return tmp_path


def score(data, *args, check=True):
    out = ["--out_json", data / "out.json", "--out_md", data / "out.md"]
    return run_module("espnet2_slap.bin.slap_score", *args, *out, cwd=REPO, check=check)


def test_retrieval(data):
    score(data, "retrieval", "--emb_dir", data / "emb", "--text2audio", data / "text2audio", "--block_size", "3")
    result = json.loads((data / "out.json").read_text())
    assert result["A->T"]["R@1"] == 100.0 and result["T->A"]["R@1"] == 100.0
    assert "| A->T / MdNR |" in (data / "out.md").read_text()


def test_scoring_on_a_given_device_gives_the_same_figures(data):
    args = ["retrieval", "--emb_dir", data / "emb", "--text2audio", data / "text2audio"]
    score(data, *args)
    default = json.loads((data / "out.json").read_text())
    score(data, *args, "--device", "cpu", "--block_size", "5")
    assert json.loads((data / "out.json").read_text()) == default


def test_zeroshot(data):
    score(data, "zeroshot", "--emb_dir", data / "emb", "--prompt_dir", data / "prompts", "--labels", data / "labels")
    result = json.loads((data / "out.json").read_text())
    assert set(result["per_prompt"]) == set(PROMPTS) and result["best"]["accuracy"] == 100.0


def test_gap(data):
    score(data, "gap", "--emb_dir", data / "emb", "--png", data / "gap.png")
    result = json.loads((data / "out.json").read_text())
    assert 0 <= result["separability"] <= 100 and result["centroid_distance"] < 0.1
    assert (data / "gap.png").stat().st_size > 0


def test_probe(data):
    for split, clips in (("train", [0, 1, 4, 5]), ("valid", [2, 6]), ("test", [3, 7])):
        (data / split).write_text("".join(f"clip{i}\n" for i in clips))
    score(
        data,
        "probe",
        "--emb_dir",
        data / "emb",
        "--feature_name",
        "audio_projection",
        "--labels",
        data / "labels",
        "--train_ids",
        data / "train",
        "--valid_ids",
        data / "valid",
        "--test_ids",
        data / "test",
        "--patience",
        "2",
    )
    result = json.loads((data / "out.json").read_text())
    assert 0 <= result["test"]["accuracy"] <= 100 and result["epochs"] >= result["best_epoch"] >= 1


def test_bad_input_names_file_and_line(data):
    (data / "text2audio").write_text("clip0-0 clip0\nclip0-1 nosuchclip\n")
    proc = score(data, "retrieval", "--emb_dir", data / "emb", "--text2audio", data / "text2audio", check=False)
    assert proc.returncode != 0
    assert f"{data / 'text2audio'}:2: id 'nosuchclip' has no audio embedding" in proc.stderr


def test_mismatched_ids_and_rows(data):
    (data / "emb" / "audio_projection.ids").write_text("clip0\nclip1\n")
    proc = score(data, "retrieval", "--emb_dir", data / "emb", check=False)
    assert "audio_projection.ids: 2 ids but" in proc.stderr and "has 8 rows" in proc.stderr


def test_help_for_each_subcommand():
    for command in ("retrieval", "zeroshot", "gap", "probe"):
        assert "--out_json" in run_module("espnet2_slap.bin.slap_score", command, "--help", cwd=REPO).stdout


def stage7_dir(directory):
    """An embedding dir as stage 7 (slap_embed) writes it: both kinds, caption ids <clip>-cap<i> (1 to 3 a clip, so
    text ids are not audio ids), text2audio beside them; noisy, so that the figures are not all 100."""
    rng = np.random.default_rng(1)
    clips = [f"clip{i}" for i in range(10)]
    captions = [(f"{c}-cap{k}", i) for i, c in enumerate(clips) for k in range(1 + i % 3)]
    for kind in ("representation", "projection"):
        audio = rng.normal(size=(len(clips), 8))
        text = audio[[i for _, i in captions]] + 1.5 * rng.normal(size=(len(captions), 8))
        write_embeddings(directory, f"audio_{kind}", clips, audio)
        write_embeddings(directory, f"text_{kind}", [c for c, _ in captions], text)
    (directory / "text2audio").write_text("".join(f"{c} {clips[i]}\n" for c, i in captions))
    (directory / "identity.json").write_text("{}")
    return directory


def test_retrieval_reads_the_text2audio_beside_the_embeddings(tmp_path):
    emb = stage7_dir(tmp_path / "exp" / "embed" / "test")
    given = score(tmp_path, "retrieval", "--emb_dir", emb, "--text2audio", emb / "text2audio")
    with_file = json.loads((tmp_path / "out.json").read_text())
    assert "no --text2audio given" not in given.stderr
    default = score(tmp_path, "retrieval", "--emb_dir", emb)
    assert f"no --text2audio given: using {emb / 'text2audio'}" in default.stderr
    assert json.loads((tmp_path / "out.json").read_text()) == with_file
    assert 0 < with_file["A->T"]["R@1"] < 100 and 0 < with_file["T->A"]["R@1"] < 100
    (emb / "text2audio").unlink()
    proc = score(tmp_path, "retrieval", "--emb_dir", emb, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines()[-1] == (
        f"slap_score retrieval: {emb}: 19 of 19 text ids are not audio ids (the first: 'clip0-cap0'), and no "
        "text2audio maps captions to clips; give --text2audio FILE ('<text_id> <audio_id>' lines, as slap_embed "
        "writes them to <emb_dir>/text2audio)"
    )
