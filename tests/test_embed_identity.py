"""Embeddings are tied to the model, config and data that made them (issue 13, item 1), and RESULTS.md says what
it scored and what chance would score (item 11)."""

import shutil

import numpy as np
import pytest
import torch
import yaml
from conftest import tiny_args

from espnet2_slap.bin import slap_embed, slap_results
from espnet2_slap.metrics.retrieval import chance_retrieval, retrieval_metrics
from espnet2_slap.tasks.slap import SLAPTask


def save_model(directory, bpe, seed, model_name="slap"):
    """(config.yaml, model.pth) of a freshly initialised tiny model; another seed gives other weights."""
    bpemodel, token_list = bpe
    directory.mkdir(parents=True, exist_ok=True)
    args = tiny_args(directory, model_name, "--token_list", str(token_list), "--bpemodel", str(bpemodel))
    torch.manual_seed(seed)
    model = SLAPTask.build_model(args)
    config, model_file = directory / "config.yaml", directory / f"{seed}epoch.pth"
    config.write_text(yaml.safe_dump(vars(args)))
    torch.save(model.state_dict(), model_file)
    return config, model_file


def embed(config, model_file, data_dir, out):
    slap_embed.main(
        [
            "--train_config",
            str(config),
            "--model_file",
            str(model_file),
            "--data_dir",
            str(data_dir),
            "--output_dir",
            str(out),
            "--chunk_size",
            "4",
        ]
    )


@pytest.fixture
def test_set(corpus, tmp_path):
    """A copy of the corpus's test data dir (tests may change it)."""
    return shutil.copytree(corpus / "test", tmp_path / "dump" / "test")


def test_embeddings_of_another_model_are_computed_again(tmp_path, bpe, test_set):
    exp = tmp_path / "exp"
    config, first = save_model(exp, bpe, seed=1)
    _, second = save_model(exp, bpe, seed=2)
    out = exp / "embed" / "test"
    embed(config, first, test_set, out)
    embed(config, second, test_set, out)  # the same embed dir, as stage 7 with another --inference_model
    fresh = tmp_path / "fresh"
    embed(config, second, test_set, fresh)
    for name in ("audio_prediction", "text_projection"):
        np.testing.assert_allclose(np.load(out / f"{name}.npy"), np.load(fresh / f"{name}.npy"), rtol=1e-5, atol=1e-6)
    identity = yaml.safe_load((out / "identity.json").read_text())
    assert identity["audio"]["model_file"] == str(second.resolve())


def test_changed_data_list_is_embedded_again(tmp_path, bpe, test_set):
    config, model_file = save_model(tmp_path / "exp", bpe, seed=1)
    out = tmp_path / "embed"
    embed(config, model_file, test_set, out)
    lines = (test_set / "text").read_text().splitlines()
    uid = lines[0].split()[0]
    lines[0] = f"{uid} a completely different caption"
    (test_set / "text").write_text("".join(f"{line}\n" for line in lines))
    embed(config, model_file, test_set, out)
    fresh = tmp_path / "fresh"
    embed(config, model_file, test_set, fresh)
    np.testing.assert_array_equal(np.load(out / "text_projection.npy"), np.load(fresh / "text_projection.npy"))


def test_results_refuse_embeddings_of_another_model(tmp_path, bpe, test_set):
    exp = tmp_path / "exp"
    config, first = save_model(exp, bpe, seed=1)
    _, second = save_model(exp, bpe, seed=2)
    embed(config, first, test_set, exp / "embed" / "test")
    cmd = ["--exp", str(exp), "--dumpdir", str(test_set.parent), "--test_sets", "test", "--model_file", second.name]
    with pytest.raises(ValueError, match=r"made by .*1epoch.pth, not by .*2epoch.pth.*--stage 7"):
        slap_results.main(cmd)
    assert not (exp / "RESULTS.md").exists()


def test_results_give_counts_and_chance_level(tmp_path, bpe, test_set):
    exp = tmp_path / "exp"
    config, model_file = save_model(exp, bpe, seed=1)
    embed(config, model_file, test_set, exp / "embed" / "test")
    slap_results.main(
        ["--exp", str(exp), "--dumpdir", str(test_set.parent), "--test_sets", "test", "--model_file", model_file.name]
    )
    text = (exp / "RESULTS.md").read_text()
    assert "8 clips, 16 captions (2 a clip)." in text
    # 8 clips: T->A R@1 by chance is 1/8; A->T with 2 of 16 captions: 1 - (14/16) = 12.5 % as well
    assert "| chance | T->A | 12.50 | 62.50 | 100.00 |" in text
    assert "| chance | A->T | 12.50 |" in text
    assert "SHA-256" in text


def test_chance_level_is_what_random_scores_give():
    text_audio = np.repeat(np.arange(12), [1, 2, 3] * 4)
    chance = chance_retrieval(text_audio, 12)
    rng = np.random.default_rng(0)
    runs = [retrieval_metrics(rng.normal(size=(12, 8)), rng.normal(size=(24, 8)), text_audio) for _ in range(400)]
    for direction in ("A->T", "T->A"):
        for key in ("R@1", "R@5", "MNR"):
            simulated = np.mean([r[direction][key] for r in runs])
            assert chance[direction][key] == pytest.approx(simulated, abs=2.5), (direction, key)
