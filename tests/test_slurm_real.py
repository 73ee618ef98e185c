"""The job runner and the default recipe on a real Slurm (slurmctld + slurmd + munged started by the fixtures,
one node of 2 CPUs on 127.0.0.1, and for --num_nodes 2 a cluster of two 1-CPU nodes on this host;
tests/slurm_cluster.py). The packages come from tools/setup_test.sh, which the README's test command runs: in
CI (CI set) these tests fail if Slurm is missing, they are never skipped."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, copy_recipes, run_recipe
from slurm_cluster import SlurmCluster, missing_programs

CONF = REPO / "egs" / "TEMPLATE" / "slap1" / "conf" / "slurm.conf"
QUICK = ["--poll_interval", "0.2", "--check_interval", "0.5"]
# A wrapper of a Slurm client: records [its name, *argv] as a json line in $CALLS, then runs the real one.
RECORDER = """#!{python}
import json, os, sys
from pathlib import Path
name = Path(sys.argv[0]).name
with open(os.environ["CALLS"], "a") as f:
    f.write(json.dumps([name, *sys.argv[1:]]) + "\\n")
os.execv(f"/usr/bin/{{name}}", [name, *sys.argv[1:]])
"""


def started(root: Path, **kwargs):
    """A running SlurmCluster in root, stopped after the tests that use it (also when one fails)."""
    missing = missing_programs()
    problem = f"slurm-wlm/munge programs missing: {' '.join(missing)}" if missing else ""
    if not problem and os.geteuid() != 0:
        problem = "the test cluster runs its daemons as root (SlurmUser=root)"
    if problem:
        message = f"{problem}: run tools/setup_test.sh (as root)"
        if os.environ.get("CI"):
            pytest.fail(f"real-Slurm tests cannot be skipped in CI: {message}")
        pytest.skip(message)
    cluster = SlurmCluster(root, **kwargs)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """One node named after this host, 2 CPUs."""
    yield from started(tmp_path_factory.mktemp("slurm"))


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory):
    """Two nodes of 1 CPU, node1 and node2, both on this host."""
    yield from started(tmp_path_factory.mktemp("slurm2"), cpus=1, nodes=2)


@pytest.fixture
def recorded(slurm, tmp_path):
    """(environment whose sbatch/squeue record their calls, calls()): the real clients behind wrappers."""
    bin_dir = tmp_path / "recorders"
    bin_dir.mkdir()
    for name in ("sbatch", "squeue"):
        (bin_dir / name).write_text(RECORDER.format(python=sys.executable))
        (bin_dir / name).chmod(0o755)
    calls = tmp_path / "calls.jsonl"
    env = {**slurm.env, "PATH": f"{bin_dir}:{Path(sys.executable).parent}:{slurm.env['PATH']}", "CALLS": str(calls)}
    return env, lambda: [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []


def run_jobs(*args, cwd: Path, env: dict, **kwargs):
    argv = [sys.executable, "-m", "espnet2_slap.bin.run_jobs", "--backend", "slurm", "--config", str(CONF), *QUICK]
    return subprocess.run([*argv, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, **kwargs)


def test_an_array_job_honours_max_jobs_run_and_is_polled_once_a_check(recorded, tmp_path):
    env, calls = recorded
    (tmp_path / "t").mkdir()
    record = "date +%s.%N > t/JOB.start; sleep 1; date +%s.%N > t/JOB.end; echo task JOB"
    start = time.monotonic()
    proc = run_jobs("--max-jobs-run", 1, "JOB=1:3", "log/p.JOB.log", "sh", "-c", record, cwd=tmp_path, env=env)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    spans = [tuple(float((tmp_path / "t" / f"{i}.{e}").read_text()) for e in ("start", "end")) for i in (1, 2, 3)]
    assert max(sum(s <= start < e for s, e in spans) for start, _ in spans) == 1  # one at a time
    submissions = [c for c in calls() if c[0] == "sbatch"]
    assert len(submissions) == 1 and "--array=1-3%1" in submissions[0]
    polls = [c for c in calls() if c[0] == "squeue"]
    assert polls and all(c[-2:] == ["--jobs", polls[0][-1]] for c in polls)  # always the one array
    assert len(polls) <= elapsed / 0.5 + 1, (len(polls), elapsed)
    for i in (1, 2, 3):
        assert f"task {i}\n# Accounting:" in (tmp_path / "log" / f"p.{i}.log").read_text()
        assert (tmp_path / "log" / "q" / f"p.{i}.out").exists()  # the scheduler's output of each task


def test_a_failing_task_names_its_log(slurm, tmp_path):
    proc = run_jobs("JOB=1:2", "log/x.JOB.log", "test", "JOB", "-ne", "2", cwd=tmp_path, env=slurm.env)
    assert proc.returncode == 1
    assert "run_jobs: 1/2 jobs failed, see log/x.2.log" in proc.stderr
    assert "# Ended (code 1)" in (tmp_path / "log" / "x.2.log").read_text()


def test_a_cancelled_task_fails_and_says_it_was_cancelled(slurm, tmp_path):
    runner = subprocess.Popen(
        [sys.executable, "-m", "espnet2_slap.bin.run_jobs", "--backend", "slurm", "--config", str(CONF), *QUICK]
        + ["JOB=1:2", "log/c.JOB.log", "sh", "-c", "[ JOB = 1 ] || sleep 120"],
        cwd=tmp_path,
        env=slurm.env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "log" / "c.2.log").exists() and time.monotonic() < deadline:
            time.sleep(0.2)  # until task 2's script runs
        task = next(line.split()[0] for line in slurm.jobs() if line.endswith("_2 RUNNING"))
        assert slurm.run("scancel", task).returncode == 0
        _, stderr = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 1
    assert (
        "run_jobs: 1/2 jobs failed, see log/c.2.log (no exit status: the scheduler says cancelled, see log/q/c.2.out)"
        in stderr
    )
    assert "CANCELLED" in (tmp_path / "log" / "q" / "c.2.out").read_text()  # Slurm's own word in its output


@pytest.fixture(scope="module")
def recipe(slurm, tmp_path_factory):
    """A copy of the mini_synth recipe whose cmd.sh polls Slurm every 0.3 s (instead of 10), beside a tools/venv
    link to this checkout's, so that path.sh in a job finds the environment as in a clone."""
    root = tmp_path_factory.mktemp("slurm_recipe")
    recipe = copy_recipes(root, "mini_synth") / "mini_synth" / "slap1"
    (root / "tools").mkdir()
    (root / "tools" / "venv").symlink_to(REPO / "tools" / "venv")
    cmd_sh = recipe / "cmd.sh"
    text = cmd_sh.read_text()
    cmd_sh.unlink()  # a link to the template in a recipe of the old shape: edit a copy
    cmd_sh.write_text(text.replace("--config conf/slurm.conf", "--config conf/slurm.conf " + " ".join(QUICK)))
    return recipe


DATA = ["--local_data_opts", "--num_train 16 --num_valid 8 --num_test 8 --seconds 2"]
COMMON = [*DATA, "--nj", "2", "--train_args", "--max_epoch 1"]


def on(cluster: SlurmCluster, recipe: Path) -> dict:
    return {**cluster.env, "cmd_backend": "slurm", "MAIN_ROOT": str(recipe.parents[2])}


@pytest.fixture(scope="module")
def prepared(slurm, recipe):
    """The recipe's stages 1-4 run with cmd_backend=slurm and --nj 2."""
    start = time.monotonic()
    run_recipe(recipe, *COMMON, "--stop_stage", "4", env=on(slurm, recipe))
    print(f"real Slurm: mini_synth stages 1-4 in {time.monotonic() - start:.1f} s")
    return recipe


@pytest.mark.slow
def test_stages_2_and_4_run_their_jobs_as_slurm_arrays(prepared):
    for dset in ("train", "valid", "test"):
        outputs = sorted(p.name for p in (prepared / f"dump/raw/{dset}/logs/q").glob("*.out"))
        assert outputs == ["format.1.out", "format.2.out"]  # the array's tasks, each with Slurm's output
        assert "# Ended (code 0)" in (prepared / f"dump/raw/{dset}/logs/format.2.log").read_text()
    assert len(list(prepared.glob("exp/stats_16000/logdir/q/stats.*.out"))) == 2
    assert (prepared / "exp/stats_16000/train/feats_stats.npz").exists()


@pytest.mark.slow
def test_training_and_embeddings_on_slurm(slurm, prepared):
    """Stage 5 through ESPnet's launcher, one Slurm job; stage 6 here; stage 7 in --inference_nj 2 array jobs."""
    start = time.monotonic()
    args = ("--stage", "5", "--stop_stage", "7", "--inference_nj", "2")
    proc = run_recipe(prepared, *COMMON, *args, env=on(slurm, prepared))
    print(f"real Slurm: mini_synth stages 5-7 in {time.monotonic() - start:.1f} s")
    exp = prepared / "exp/slap_train_slap_tiny"
    assert (exp / "1epoch.pth").exists() and (exp / "q" / "train.out").exists(), proc.stdout[-2000:]
    assert sorted(p.name for p in (exp / "embed/test/logs/q").glob("embed.*.out")) == ["embed.1.out", "embed.2.out"]
    assert (exp / "embed/test/audio_prediction.npy").exists()


@pytest.mark.slow
def test_training_on_two_nodes_through_espnet_launcher_and_srun(two_nodes, prepared):
    """--num_nodes 2: ESPnet's launcher submits one job for 2 nodes and srun starts a gloo rank on each."""
    start = time.monotonic()
    args = ("--stage", "5", "--stop_stage", "5", "--num_nodes", "2", "--tag", "two_nodes")
    run_recipe(prepared, *COMMON, *args, env=on(two_nodes, prepared))
    print(f"real Slurm: stage 5 on 2 nodes in {time.monotonic() - start:.1f} s")
    log = (prepared / "exp/slap_two_nodes/train.log").read_text()
    assert "--dist_launcher slurm" in log and log.count("slap_train.py --config") == 2  # one process a node
    assert re.search(r"\[\S+:0/2\] .* 1/1epoch started", log)  # rank 0 of world size 2 trained ...
    assert (prepared / "exp/slap_two_nodes/1epoch.pth").exists()  # ... and saved the model
