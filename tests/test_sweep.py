"""sweep.sh: a study's points x seeds as the tasks of one array job of the recipe, then slap_compare's table
and plot; the study file's checks."""

import json
import shlex
from pathlib import Path

import pytest
import yaml
from conftest import REPO, copy_recipes, run_recipe

from espnet2_slap.queue.sweep import read_study, write_plan

RECIPE = REPO / "egs" / "mini_synth" / "slap1"


@pytest.mark.parametrize("study", sorted(p.name for p in (RECIPE / "conf" / "sweep").glob("*.yaml")))
def test_the_shipped_studies_read(study, monkeypatch):
    monkeypatch.chdir(RECIPE)
    parsed = read_study(Path("conf/sweep") / study)
    assert parsed.points and len(parsed.seeds) >= 2


def write_study(path: Path, points, **extra) -> Path:
    path.write_text(yaml.safe_dump({"name": "s", "points": points, **extra}))
    return path


def test_plan_has_a_task_per_point_and_seed(tmp_path, monkeypatch):
    monkeypatch.chdir(RECIPE)
    study = read_study(
        write_study(
            tmp_path / "s.yaml",
            [
                {"name": "a", "train_config": "conf/tuning/train_slap_tiny.yaml", "train_args": "--batch_size 8"},
                {"name": "b", "train_config": "conf/tuning/train_clap_tiny.yaml"},
            ],
            seeds=[1, 2],
            compare={"x": "effective_batch", "series": "model"},
        ),
        seeds=[3, 4, 5],
    )
    assert write_plan(study, tmp_path / "plan", "exp", ["--ngpu", "0"]) == 6
    lines = (tmp_path / "plan" / "tasks.sh").read_text().splitlines()
    first = shlex.split(lines[0])
    assert first[:5] == ["./run.sh", "--stage", "5", "--stop_stage", "8"]
    assert first[first.index("--train_args") + 1] == "--batch_size 8 --seed 3"
    assert first[first.index("--tag") + 1] == "sweep_s/a_s3" and first[-4:] == ["--ngpu", "0", "--expdir", "exp"]
    assert shlex.split(lines[5])[shlex.split(lines[5]).index("--train_args") + 1] == "--seed 5"
    experiments = (tmp_path / "plan" / "experiments").read_text().split()
    assert experiments[0] == "exp/slap_sweep_s/a_s3" and len(experiments) == 6
    opts = shlex.split((tmp_path / "plan" / "compare.opts").read_text())
    assert dict(zip(opts[::2], opts[1::2])) == {"--x": "effective_batch", "--series": "model"}
    with pytest.raises(ValueError, match="must not set --train_args"):
        write_plan(study, tmp_path / "plan", "exp", ["--train_args", "--max_epoch 2"])


@pytest.mark.parametrize(
    "points, message",
    [
        ([{"name": "a", "train_config": "conf/nope.yaml"}], "does not exist"),
        ([{"name": "a b", "train_config": "conf/tuning/train_slap_tiny.yaml"}], "a name of letters"),
        ([{"name": "a", "train_config": "conf/tuning/train_slap_tiny.yaml", "train_args": "--seed 3"}], "--seed"),
        ([{"name": "a", "train_config": "conf/tuning/train_slap_tiny.yaml"}] * 2, "used twice"),
        ([{"name": "a", "config": "x"}], "points\\[0\\]"),
        ([], "no points"),
    ],
)
def test_a_bad_study_is_refused_naming_the_point(tmp_path, monkeypatch, points, message):
    monkeypatch.chdir(RECIPE)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        read_study(write_study(tmp_path / "s.yaml", points))


# The reduced grid's size: what is checked is the plumbing (tasks, their experiments, the comparison), not learning.
QUICK = "--max_epoch 1 --num_iters_per_epoch 2"
TINY_DATA = ["--local_data_opts", "--num_train 8 --num_valid 4 --num_test 4 --seconds 2"]


def test_sweep_runs_a_reduced_grid_through_the_job_runner_and_compares(tmp_path):
    """Two points (SLAP, CLAP), one seed, one epoch: each task trains and scores its own experiment, and the
    study ends in one table and one plot."""
    recipe = copy_recipes(tmp_path, "mini_synth") / "mini_synth" / "slap1"
    write_study(
        recipe / "conf" / "sweep" / "reduced.yaml",
        [
            {"name": "slap", "train_config": "conf/tuning/train_slap_tiny.yaml", "train_args": QUICK},
            {"name": "clap", "train_config": "conf/tuning/train_clap_tiny.yaml", "train_args": QUICK},
        ],
        seeds=[7],
    )
    run_recipe(recipe, "--study", "conf/sweep/reduced.yaml", "--max_jobs_run", "2", "--", *TINY_DATA,
               "--score_config", "conf/score_sweep.yaml", script="./sweep.sh")  # fmt: skip
    study_dir = recipe / "exp" / "slap_sweep_s"
    for point in ("slap", "clap"):
        exp = study_dir / f"{point}_s7"
        assert (exp / "RESULTS.md").is_file() and (study_dir / "logs" / "task.1.log").is_file()
        config = yaml.safe_load((exp / "config.yaml").read_text())
        assert config["seed"] == 7 and config["max_epoch"] == 1 and config["model"] == point
    table = (study_dir / "compare.md").read_text()
    assert "slap" in table and "clap" in table
    assert (study_dir / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    comparison = json.loads((study_dir / "compare.json").read_text())
    assert sorted((g["label"], g["seeds"]) for g in comparison["groups"]) == [("clap", [7]), ("slap", [7])]
