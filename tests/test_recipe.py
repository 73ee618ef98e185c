"""The default recipe, egs/mini_synth/slap1/run.sh, stages 1-8 on CPU with the local back-end, in a copy of egs/.

Slow (a few minutes): it is the pipeline a user runs first.
"""

import os
import shutil
import subprocess

import pytest
from conftest import REPO

SMALL = ["--local_data_opts", "--num_train 48 --num_valid 16 --num_test 16 --seconds 2"]


def run(recipe, *args, check=True):
    env = dict(os.environ, MAIN_ROOT=str(REPO), PATH=f"{REPO}/tools/venv/bin:{os.environ['PATH']}")
    proc = subprocess.run(["./run.sh", *args], cwd=recipe, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"run.sh {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def lines(path):
    return path.read_text().splitlines()


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    """A copy of egs/ (sources only) and the mini_synth recipe run from stage 1 to 8."""
    egs = tmp_path_factory.mktemp("egs") / "egs"
    ignore = shutil.ignore_patterns("data", "dump", "exp")
    for name in ("TEMPLATE", "mini_synth"):
        shutil.copytree(REPO / "egs" / name, egs / name, symlinks=True, ignore=ignore)
    recipe = egs / "mini_synth" / "slap1"
    proc = run(recipe, *SMALL, "--train_args", "--max_epoch 2")
    recipe.joinpath("first_run.log").write_text(proc.stdout + proc.stderr)
    return recipe


@pytest.mark.slow
def test_each_stage_makes_its_outputs(recipe):
    log = (recipe / "first_run.log").read_text()
    for stage in range(1, 9):
        assert f"Stage {stage}:" in log
    assert len(lines(recipe / "data/train/wav.scp")) == 48 and len(lines(recipe / "data/test/text")) == 16
    formatted = lines(recipe / "dump/raw/train/wav.scp")
    assert len(formatted) == 48 and all(line.split()[1].endswith(".flac") for line in formatted)
    assert lines(recipe / "dump/raw/train/utt2num_samples")[0].split()[1] == "32000"  # 2 s at 16 kHz
    assert len(lines(recipe / "dump/raw/test/utt2instrument")) == 16
    assert (recipe / "data/token_list/bpe_unigram120/bpe.model").exists()
    assert (recipe / "exp/stats_16000/train/feats_stats.npz").exists()
    exp = recipe / "exp/slap_train_slap_tiny"
    for name in ("2epoch.pth", "valid.r1_t2a.ave.pth", "packed_model.zip", "embed/test/audio_prediction.npy",
                 "embed/test/text2audio", "embed/test/umap.png", "results.json"):
        assert (exp / name).exists(), name
    results = (exp / "RESULTS.md").read_text()
    assert "| prediction | T->A |" in results and "| utt2instrument | 4 |" in results
    assert "linear separability" in results


@pytest.mark.slow
def test_rerunning_finished_stages_changes_nothing(recipe):
    watched = [recipe / "data/train/text", recipe / "dump/raw/train/wav.scp", recipe / "exp/stats_16000/train/feats_stats.npz",
               *sorted((recipe / "dump/raw/train/data").glob("*.flac"))[:3]]
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in watched}
    proc = run(recipe, *SMALL, "--stop_stage", "4")
    assert proc.stdout.count("already done") >= 5
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in watched} == before


@pytest.mark.slow
def test_a_failing_job_fails_its_stage_and_names_its_log(recipe):
    (recipe / "dump/raw/test/.done").unlink()
    proc = run(recipe, "--stage", "2", "--stop_stage", "2", "--fs", "-1", check=False)
    assert proc.returncode != 0
    assert "jobs failed, see" in proc.stderr + proc.stdout and "dump/raw/test/logs/format." in proc.stderr + proc.stdout
    run(recipe, "--stage", "2", "--stop_stage", "2")  # and the stage recovers


@pytest.mark.slow
def test_num_splits_shards_the_training_lists(recipe):
    run(recipe, "--stage", "5", "--stop_stage", "5", "--num_splits", "2", "--tag", "sharded",
        "--train_args", "--max_epoch 1")
    split_dir = recipe / "exp/stats_16000/splits2"
    for name in ("wav.scp", "text", "speech_shape"):
        assert (split_dir / name / "num_splits").read_text().strip() == "2"
        shards = [lines(split_dir / name / f"split.{i}") for i in range(2)]
        assert sum(map(len, shards)) == 48 and all(shards)
    train_log = (recipe / "exp/slap_sharded/train.log").read_text()
    assert "splits2/wav.scp/split.0" in train_log and "splits2/wav.scp/split.1" in train_log
    assert (recipe / "exp/slap_sharded/1epoch.pth").exists()
