"""The job runner and the default recipe on a real Grid Engine (sge_qmaster + sge_execd of Debian's gridengine
8.1.9, started by the fixture from a cell in a temporary directory: one queue of 2 slots on this host, the
parallel environments smp and mpi; tests/sge_cluster.py), with the shipped conf/sge.conf. The packages come from
tools/setup_test.sh, which the README's test command runs: in CI (CI set) these tests fail if Grid Engine is
missing, they are never skipped."""

import subprocess
import time

import pytest
import real_scheduler as real
from conftest import run_recipe
from sge_cluster import SgeCluster, missing_programs


@pytest.fixture(scope="module")
def sge(tmp_path_factory):
    """The cell, with this host's execd (2 slots)."""
    cluster = SgeCluster(tmp_path_factory.mktemp("sge"))
    yield from real.started(cluster, missing_programs(), "gridengine", "admin_user none: they and the jobs are root's")


@pytest.fixture
def recorded(sge, tmp_path):
    """(environment whose qsub/qstat/qacct record their calls, calls()): the real clients behind wrappers."""
    return real.recording(sge.env, tmp_path, ("qsub", "qstat", "qacct"), "/usr/bin")


def test_an_array_job_honours_max_jobs_run_and_is_polled_once_a_check(recorded, tmp_path):
    """-tc 1 honoured though the queue has 2 slots; qstat -j <array> once a check."""
    env, calls = recorded
    submission = real.run_one_at_a_time("sge", env, tmp_path, calls, "qstat")
    assert "-t 1-3 -tc 1" in " ".join(submission)
    assert [c[1] for c in calls() if c[0] == "qstat"][0] == "-j"
    assert not [c for c in calls() if c[0] == "qacct"]  # every task wrote its marker: no accounting asked


def test_a_failing_task_names_its_log_and_exit_status(sge, tmp_path):
    real.check_a_failing_task("sge", sge.env, tmp_path)


def test_a_deleted_task_is_reported_as_deleted_from_the_accounting(recorded, sge, tmp_path):
    env, calls = recorded
    job_id = []

    def delete_task_2():
        job_id.append(sge.jobs()[0].split()[0])
        assert sge.run("qdel", job_id[0], "-t", "2").returncode == 0

    returncode, stderr = real.end_task_2("sge", env, tmp_path, delete_task_2)
    assert returncode == 1
    assert (
        "run_jobs: 1/2 jobs failed, see log/s.2.log (task 2, exit status 137: the scheduler says deleted (qdel) or "
        "killed by signal 9 (failed 100 : assumedly after job), see log/q/s.2.out)" in stderr
    )
    assert "vanished" not in stderr
    assert ["qacct", "-j", job_id[0]] in calls()


def test_a_task_in_the_error_state_fails_with_its_reason_and_is_deleted(sge, tmp_path):
    """A job SGE cannot start (here: its working directory is not there) stays queued in Eqw for ever: the runner
    reports each task with qstat's error reason instead of waiting, and deletes them."""
    conf = tmp_path / "sge.conf"
    conf.write_text(real.CONF.joinpath("sge.conf").read_text().replace("command qsub", "command qsub -wd /nonexistent"))
    argv = real.runner_argv("sge", "JOB=1:2", "log/e.JOB.log", "true", conf=conf)
    try:  # a runner that waits on the stuck tasks fails here instead of hanging the suite
        proc = subprocess.run(argv, cwd=tmp_path, env=sge.env, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        subprocess.run(["qdel", "-u", "*"], env=sge.env, capture_output=True)  # the stuck job, for the next tests
        raise
    assert proc.returncode == 1
    assert "2/2 jobs failed" in proc.stderr and "in error state (Eqw) and deleted" in proc.stderr, proc.stderr
    assert "can't chdir to /nonexistent" in proc.stderr
    deadline = time.monotonic() + 20
    while sge.jobs() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not sge.jobs()


def test_the_shipped_conf_asks_for_threads_and_nodes_as_the_cell_takes_them(sge, tmp_path):
    """conf/sge.conf as shipped: --num_threads 2 is 2 slots of smp, --num_nodes 2 2 slots of mpi (one a node on a
    cluster; both on this one host here), --time h_rt."""
    show = "echo slots=$NSLOTS pe=$PE"
    for options, pe in ((["--num_threads", 2, "--time", "0:10:0"], "smp"), (["--num_nodes", 2], "mpi")):
        proc = real.run_jobs("sge", *options, f"log/{pe}.log", "sh", "-c", show, cwd=tmp_path, env=sge.env)
        assert proc.returncode == 0, proc.stderr
        assert f"slots=2 pe={pe}\n" in (tmp_path / "log" / f"{pe}.log").read_text()


def test_the_mem_line_works_as_shipped_and_kaldis_ram_free_needs_the_cells_complex(sge, tmp_path):
    """--mem asks for mem_free, which every cell has; Kaldi's line adds ram_free, a consumable of Kaldi's sites that
    a stock cell refuses (the README says to add it where the cell defines it)."""
    proc = real.run_jobs("sge", "--mem", "1G", "log/m.log", "true", cwd=tmp_path, env=sge.env)
    assert proc.returncode == 0, proc.stderr
    conf = tmp_path / "sge.conf"
    conf.write_text(real.CONF.joinpath("sge.conf").read_text().replace("mem_free=$0", "mem_free=$0,ram_free=$0"))
    proc = real.run_jobs("sge", "--mem", "1G", "log/m.log", "true", cwd=tmp_path, env=sge.env, conf=conf)
    assert proc.returncode == 1 and 'unknown resource "ram_free"' in proc.stderr


@pytest.mark.slow
def test_recipe_stages_2_4_and_7_run_their_jobs_as_sge_arrays(sge, tmp_path):
    """mini_synth with cmd_backend=sge: stages 2 and 4 in --nj 2 arrays, 5 one job (ESPnet's launcher), 7 an
    --inference_nj 2 array."""
    recipe = real.recipe_copy(tmp_path)
    start = time.monotonic()
    run_recipe(recipe, *real.COMMON, "--stop_stage", "7", "--inference_nj", "2", env=real.on(sge.env, "sge", recipe))
    print(f"real SGE: mini_synth stages 1-7 in {time.monotonic() - start:.1f} s")
    for dset in ("train", "valid", "test"):
        outputs = sorted(p.name for p in (recipe / f"dump/raw/{dset}/logs/q").glob("*.out"))
        assert outputs == ["format.1.out", "format.2.out"]  # the array's tasks, each with SGE's output
        assert "# Ended (code 0)" in (recipe / f"dump/raw/{dset}/logs/format.2.log").read_text()
    assert len(list(recipe.glob("exp/stats_16000/logdir/q/stats.*.out"))) == 2
    exp = recipe / "exp/slap_train_slap_tiny"
    assert (exp / "1epoch.pth").exists() and (exp / "q" / "train.out").exists()
    assert sorted(p.name for p in (exp / "embed/test/logs/q").glob("embed.*.out")) == ["embed.1.out", "embed.2.out"]
    assert (exp / "embed/test/audio_prediction.npy").exists()
