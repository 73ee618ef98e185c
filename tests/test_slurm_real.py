"""The job runner and the default recipe on a real Slurm (slurmctld + slurmd + munged started by the fixtures,
one node of 2 CPUs on 127.0.0.1, and for --num_nodes 2 a cluster of two 1-CPU nodes on this host;
tests/slurm_cluster.py). The packages come from tools/setup_test.sh, which the README's test command runs: in
CI (CI set) these tests fail if Slurm is missing, they are never skipped."""

import re
import time
from pathlib import Path

import pytest
from conftest import run_recipe
from real_scheduler import (
    COMMON,
    check_a_failing_task,
    end_task_2,
    on,
    recipe_copy,
    recording,
    run_one_at_a_time,
    started,
)
from slurm_cluster import SlurmCluster, missing_programs


def slurm_cluster(root: Path, **kwargs):
    """A running SlurmCluster in root, stopped after the tests that use it (also when one fails)."""
    yield from started(SlurmCluster(root, **kwargs), missing_programs(), "slurm-wlm/munge", "SlurmUser=root")


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """One node named after this host, 2 CPUs."""
    yield from slurm_cluster(tmp_path_factory.mktemp("slurm"))


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory):
    """Two nodes of 1 CPU, node1 and node2, both on this host."""
    yield from slurm_cluster(tmp_path_factory.mktemp("slurm2"), cpus=1, nodes=2)


@pytest.fixture
def recorded(slurm, tmp_path):
    """(environment whose sbatch/squeue/sacct record their calls, calls()): the real clients behind wrappers."""
    return recording(slurm.env, tmp_path, ("sbatch", "squeue", "sacct"), "/usr/bin")


def test_an_array_job_honours_max_jobs_run_and_is_polled_once_a_check(recorded, tmp_path):
    env, calls = recorded
    assert "--array=1-3%1" in run_one_at_a_time("slurm", env, tmp_path, calls, "squeue")
    assert not [c for c in calls() if c[0] == "sacct"]  # every task wrote its marker: no accounting asked


def test_a_failing_task_names_its_log(slurm, tmp_path):
    check_a_failing_task("slurm", slurm.env, tmp_path)


def test_a_cancelled_task_fails_and_says_it_was_cancelled(recorded, slurm, tmp_path):
    """The test cluster keeps no accounting (AccountingStorageType=accounting_storage/none: Slurm 22.05 stores it
    only through slurmdbd and a MySQL/MariaDB server): sacct says so, and squeue's last state is the reason."""
    env, calls = recorded

    def cancel_task_2():
        task = next(line.split()[0] for line in slurm.jobs() if line.endswith("_2 RUNNING"))
        assert slurm.run("scancel", task).returncode == 0

    returncode, stderr = end_task_2("slurm", env, tmp_path, cancel_task_2)
    assert returncode == 1
    assert (
        "run_jobs: 1/2 jobs failed, see log/s.2.log (task 2, no exit status: the scheduler says cancelled, see "
        "log/q/s.2.out)" in stderr
    )
    assert "CANCELLED" in (tmp_path / "log" / "q" / "s.2.out").read_text()  # Slurm's own word in its output
    assert len([c for c in calls() if c[0] == "sacct"]) == 1  # asked once, said that it keeps no accounting


@pytest.fixture(scope="module")
def recipe(slurm, tmp_path_factory):
    """A copy of the mini_synth recipe that polls Slurm every 0.2 s."""
    return recipe_copy(tmp_path_factory.mktemp("slurm_recipe"))


@pytest.fixture(scope="module")
def prepared(slurm, recipe):
    """The recipe's stages 1-4 run with cmd_backend=slurm and --nj 2."""
    start = time.monotonic()
    run_recipe(recipe, *COMMON, "--stop_stage", "4", env=on(slurm.env, "slurm", recipe))
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
    proc = run_recipe(prepared, *COMMON, *args, env=on(slurm.env, "slurm", prepared))
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
    run_recipe(prepared, *COMMON, *args, env=on(two_nodes.env, "slurm", prepared))
    print(f"real Slurm: stage 5 on 2 nodes in {time.monotonic() - start:.1f} s")
    log = (prepared / "exp/slap_two_nodes/train.log").read_text()
    assert "--dist_launcher slurm" in log and log.count("slap_train.py --config") == 2  # one process a node
    assert re.search(r"\[\S+:0/2\] .* 1/1epoch started", log)  # rank 0 of world size 2 trained ...
    assert (prepared / "exp/slap_two_nodes/1epoch.pth").exists()  # ... and saved the model
