"""The default recipe, egs/mini_synth/slap1/run.sh, stages 1-8 on CPU with the local back-end, in a copy of egs/.

Slow (a few minutes): it is the pipeline a user runs first. slap.sh --help is checked without running it.
"""

import re
import subprocess

import pytest
from conftest import MINI_SYNTH_OPTS as SMALL
from conftest import REPO, copy_recipes
from conftest import run_recipe as run

SLAP_SH = REPO / "egs/TEMPLATE/slap1/slap.sh"


def lines(path):
    return path.read_text().splitlines()


def test_help_lists_every_option_with_its_default_and_a_description():
    declared = re.findall(r"^([a-z_]+)=", SLAP_SH.read_text().split("# ---- end of options")[0], re.MULTILINE)
    assert len(declared) > 25
    help_text = subprocess.run(["bash", str(SLAP_SH), "--help"], capture_output=True, text=True, check=True).stdout
    described = dict(re.findall(r"^  --([a-z_]+) <[^>]*> +(\S.*)$", help_text, re.MULTILINE))
    assert sorted(described) == sorted(declared)
    assert re.search(r"^  --stop_stage <100> +last stage to run", help_text, re.MULTILINE)
    assert "<exp>/.train.done" in help_text and "<exp>/embed/<set>/.done" in help_text


def test_an_unknown_option_is_refused_before_anything_runs():
    proc = subprocess.run(
        ["bash", str(SLAP_SH), "--stage", "1", "--no_such_option", "1"], capture_output=True, text=True
    )
    assert proc.returncode != 0 and "unknown option --no_such_option (see --help)" in proc.stderr


@pytest.fixture(scope="module")
def recipe(mini_synth):
    """The mini_synth recipe run from stage 1 to 8 in a copy of egs/ (conftest's session fixture: trained once)."""
    return mini_synth


@pytest.mark.slow
def test_each_stage_makes_its_outputs(recipe):
    log = (recipe / "first_run.log").read_text()
    for stage in range(1, 10):
        assert f"Stage {stage}:" in log
    assert len(lines(recipe / "data/train/wav.scp")) == 48 and len(lines(recipe / "data/test/text")) == 16
    formatted = lines(recipe / "dump/raw/train/wav.scp")
    assert len(formatted) == 48 and all(line.split()[1].endswith(".flac") for line in formatted)
    assert lines(recipe / "dump/raw/train/utt2num_samples")[0].split()[1] == "32000"  # 2 s at 16 kHz
    assert len(lines(recipe / "dump/raw/test/utt2instrument")) == 16
    assert (recipe / "data/token_list/bpe_unigram120/bpe.model").exists()
    assert (recipe / "exp/stats_16000/train/feats_stats.npz").exists()
    exp = recipe / "exp/slap_train_slap_tiny"
    for name in (
        "2epoch.pth",
        "valid.epoch.ave.pth",  # --model_selection auto: 16 validation clips, the last epochs
        "model_selection.json",
        "packed_model.zip",
        "embed/test/audio_prediction.npy",
        "embed/test/text2audio",
        "embed/test/umap.png",
        "results.json",
    ):
        assert (exp / name).exists(), name
    results = (exp / "RESULTS.md").read_text()
    assert "| prediction | T->A |" in results and "| utt2instrument | 4 |" in results
    assert "| prediction | " in results.split("### Modality gap")[1] and "UMAP (prediction): `" in results
    # keep_nbest_models 3 of 2 epochs: ESPnet's average_nbest_models takes the best (the last) alone
    assert "- epochs trained: 2 (max_epoch 2)" in results and "- epochs averaged: 2 (valid.epoch: 2)" in results
    assert "Model selection: last, valid.epoch.ave.pth (the validation set has 16 clips, fewer than 100" in log
    assert "16 clips, 32 captions (2 a clip)." in results and "| chance | T->A | 6.25 | 31.25 | 62.50 |" in results
    # the console during stage 5 (issue 13, item 10): where to follow, then each epoch's results as they come
    assert "follow the training with: tail -f exp/slap_train_slap_tiny/train.log" in log
    assert "2epoch results:" in log and "has 16 utterances, fewer than 100" not in log  # the last epochs: no ranking
    assert "Finished stages 1-9 of exp/slap_train_slap_tiny: ran stage 1 stage 2 train" in log


@pytest.mark.slow
def test_rerunning_a_finished_recipe_skips_every_stage_and_starts_no_training(recipe):
    exp = recipe / "exp/slap_train_slap_tiny"
    watched = [
        exp / name for name in ("train.log", "packed_model.zip", "embed/test/audio_projection.npy", "RESULTS.md")
    ]
    before = {p: p.stat().st_mtime_ns for p in watched}
    proc = run(recipe, *SMALL, "--train_args", "--max_epoch 2")
    for stage in ("stage 1", "stage 2 test", "stage 3", "stage 4", "stage 5", "stage 7 test", "stage 8", "stage 9"):
        assert f"{stage}: already done" in proc.stdout, stage
    assert "espnet2.bin.launch" not in proc.stdout + proc.stderr
    assert {p: p.stat().st_mtime_ns for p in watched} == before


@pytest.mark.slow
def test_another_model_redoes_embedding_and_scoring(recipe):
    """The markers of stages 7-8 hold the model's identity: evaluating another model file redoes them (and the
    results name it); going back to the first model redoes them again."""
    exp = recipe / "exp/slap_train_slap_tiny"
    score = ["--score_config", "conf/score_sweep.yaml"]  # retrieval and the gap: what is checked here is the model
    proc = run(recipe, *SMALL, *score, "--stage", "7", "--stop_stage", "8", "--inference_model", "1epoch.pth")
    assert "stage 7 test: redoing it: changed since it was made: model " in proc.stdout
    assert "stage 8: redoing it: changed since it was made: model " in proc.stdout
    assert "Model: `exp/slap_train_slap_tiny/1epoch.pth`" in (exp / "RESULTS.md").read_text()
    proc = run(recipe, *SMALL, *score, "--stage", "7", "--stop_stage", "8")
    assert "stage 7 test: redoing it: changed since it was made: model " in proc.stdout
    assert "Model: `exp/slap_train_slap_tiny/valid.epoch.ave.pth`" in (exp / "RESULTS.md").read_text()


@pytest.mark.slow
def test_rerunning_finished_stages_changes_nothing(recipe):
    watched = [
        recipe / "data/train/text",
        recipe / "dump/raw/train/wav.scp",
        recipe / "exp/stats_16000/train/feats_stats.npz",
        *sorted((recipe / "dump/raw/train/data").glob("*.flac"))[:3],
    ]
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in watched}
    proc = run(recipe, *SMALL, "--stop_stage", "4")
    assert proc.stdout.count("already done") >= 5
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in watched} == before


@pytest.mark.slow
def test_a_failing_job_fails_its_stage_and_names_its_log(recipe):
    (recipe / "dump/raw/test/.done").unlink()
    audio = recipe / "dump/raw/test/data"
    audio.rename(audio.with_name("data.kept"))
    audio.write_text("")  # a file where the jobs write their audio: each of them fails
    try:
        proc = run(recipe, *SMALL, "--stage", "2", "--stop_stage", "2", check=False)
    finally:
        audio.unlink()
        audio.with_name("data.kept").rename(audio)
    assert proc.returncode != 0
    assert "jobs failed, see" in proc.stderr + proc.stdout and "dump/raw/test/logs/format." in proc.stderr + proc.stdout
    run(recipe, *SMALL, "--stage", "2", "--stop_stage", "2")  # and the stage recovers


@pytest.mark.slow
def test_num_splits_shards_the_training_lists(recipe):
    run(
        recipe,
        "--stage",
        "5",
        "--stop_stage",
        "5",
        "--num_splits",
        "2",
        "--tag",
        "sharded",
        "--train_args",
        "--max_epoch 1",
    )
    split_dir = recipe / "exp/stats_16000/splits2"
    for name in ("wav.scp", "text", "utt2num_samples", "speech_shape"):  # lazy_sound reads the lengths' shard
        assert (split_dir / name / "num_splits").read_text().strip() == "2"
        shards = [lines(split_dir / name / f"split.{i}") for i in range(2)]
        assert sum(map(len, shards)) == 48 and all(shards)
    train_log = (recipe / "exp/slap_sharded/train.log").read_text()
    assert "splits2/wav.scp/split.0" in train_log and "splits2/wav.scp/split.1" in train_log
    assert (recipe / "exp/slap_sharded/1epoch.pth").exists()


def test_num_nodes_with_the_local_back_end_is_refused_before_anything_runs(tmp_path):
    """--num_nodes 2 needs a cluster back-end (tests/test_slurm_real.py trains on two Slurm nodes through the recipe,
    tests/test_job_runner.py through ESPnet's launcher and fakes of sbatch and srun)."""
    recipe = copy_recipes(tmp_path, "mini_synth") / "mini_synth" / "slap1"
    proc = run(recipe, "--num_nodes", "2", env={"cmd_backend": "local"}, check=False)
    assert proc.returncode != 0 and "--num_nodes 2 needs a cluster back-end" in proc.stderr
