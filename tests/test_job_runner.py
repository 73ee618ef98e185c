"""The Kaldi-style job runner: local jobs for real, slurm/sge/pbs/ssh through fake executables on PATH."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from espnet2_slap.queue.config import JobRunnerError, QueueConfig
from espnet2_slap.queue.job_runner import make_tasks, shell_join
from espnet2_slap.queue.schedulers import SCHEDULERS

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "egs" / "TEMPLATE" / "slap1" / "conf"
FAST = ["--poll_interval", "0.02", "--check_interval", "0.02"]

# A fake sbatch/qsub/ssh/squeue/qstat: records [its name, *argv] as a json line in $FAKE_CALLS, prints a job
# id like the real one (sbatch --parsable, qsub -terse: "1001"; PBS qsub: "1001.server", "1001[].server" for an
# array). Submitters run the job script synchronously unless FAKE_RUN=0, an array's once per index (--array=A-B,
# -t A-B, -J A-B) with that index in SLURM_ARRAY_TASK_ID, SGE_TASK_ID and PBS_ARRAY_INDEX; ssh runs its remote
# command with bash and returns its status; squeue/qstat know no job (print nothing, exit 1), as after a job
# vanished; sacct/qacct say that the scheduler keeps no accounting (in the real ones' words).
FAKE = """#!{python}
import json, os, re, subprocess, sys
from pathlib import Path
name, argv = Path(sys.argv[0]).name, sys.argv[1:]
calls = Path(os.environ["FAKE_CALLS"])
with calls.open("a") as f:
    f.write(json.dumps([name, *argv]) + "\\n")
if name == "ssh":
    sys.exit(subprocess.run(["bash", "-c", argv[-1]]).returncode)
if name in ("squeue", "qstat"):
    sys.exit(1)
if name in ("sacct", "qacct"):
    no_accounting = {{"sacct": "Slurm accounting storage is disabled",
                     "qacct": "/var/lib/gridengine/default/common/accounting: No such file or directory"}}
    sys.exit(no_accounting[name])
words = " ".join(argv)
array = re.search(r"(?:--array=|-t |-J )(\\d+)-(\\d+)", words)
if os.environ.get("FAKE_RUN", "1") == "1":
    for i in range(int(array.group(1)), int(array.group(2)) + 1) if array else [0]:
        index = {{k: str(i) for k in ("SLURM_ARRAY_TASK_ID", "SGE_TASK_ID", "PBS_ARRAY_INDEX")}}
        subprocess.run(["bash", argv[-1]], stdout=subprocess.DEVNULL, env={{**os.environ, **index}})
job_id = 1000 + len(calls.read_text().splitlines())
print(job_id if name == "sbatch" or "-terse" in argv else f"{{job_id}}[].server" if array else f"{{job_id}}.server")
"""


def run_jobs(*args, cwd: Path, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "espnet2_slap.bin.run_jobs", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.fixture
def fake_env(tmp_path):
    """Environment with the fakes first on PATH; calls() -> the recorded argv lists."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    for name in ("sbatch", "qsub", "ssh", "squeue", "qstat", "sacct", "qacct"):
        (bin_dir / name).write_text(FAKE.format(python=sys.executable))
        (bin_dir / name).chmod(0o755)
    calls_file = tmp_path / "calls.jsonl"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_CALLS": str(calls_file)}

    def calls():
        return [json.loads(line) for line in calls_file.read_text().splitlines()] if calls_file.exists() else []

    return env, calls


def work_dir(tmp_path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    return work


# ---------------------------------------------------------------- argument handling (no process started)


def test_job_variable_is_substituted_in_log_and_words():
    tasks = make_tasks(["N=2:3", "log/x.N.log", "cmd", "--part", "N", "data/split.N/in"])
    assert [(t.index, t.command, str(t.log)) for t in tasks] == [
        (2, "cmd --part 2 data/split.2/in", "log/x.2.log"),
        (3, "cmd --part 3 data/split.3/in", "log/x.3.log"),
    ]
    single = make_tasks(["log/one.log", "echo", "JOB"])  # no range: one job, JOB left alone
    assert [(t.index, t.command, str(t.log)) for t in single] == [(1, "echo JOB", "log/one.log")]


def test_several_jobs_need_the_variable_in_the_log_name():
    with pytest.raises(JobRunnerError, match="put JOB in its name"):
        make_tasks(["JOB=1:2", "log/x.log", "echo"])
    with pytest.raises(JobRunnerError, match="empty job range"):
        make_tasks(["JOB=3:2", "log/x.JOB.log", "echo"])


def test_shell_join_quotes_words_and_keeps_operators():
    assert (
        shell_join(["echo", "a b; touch X", "$HOME", "|", "gzip", ">", "out.gz"])
        == "echo 'a b; touch X' '$HOME' | gzip > out.gz"
    )


def test_queue_config_values_defaults_and_order():
    config = QueueConfig.parse(
        "command sbatch --export=PATH  # comment\n"
        "option mem=*\t--mem-per-cpu $0\noption mem=0\n"
        "default gpu=0\noption gpu=0 -p cpu\noption gpu=* -p gpu --gres=gpu:$0\n",
        "test.conf",
    )
    assert config.command == ["sbatch", "--export=PATH"]
    assert config.submit_options({}) == ["-p", "cpu"]
    assert config.submit_options({"gpu": "2", "mem": "4G"}) == ["--mem-per-cpu", "4G", "-p", "gpu", "--gres=gpu:2"]
    assert config.submit_options({"mem": "0"}) == ["-p", "cpu"]
    with pytest.raises(JobRunnerError, match="--num_threads 2 is not described in test.conf"):
        config.submit_options({"num_threads": "2"})


@pytest.mark.parametrize(
    "text, error",
    [
        ("option mem=* --mem 4G\n", "needs \\$0"),
        ("command qsub\nrequire mem=4G\n", "test.conf:2: cannot parse"),
        ("option mem=* --mem $0\n", "no 'command' line"),
    ],
)
def test_queue_config_errors(text, error):
    with pytest.raises(JobRunnerError, match=error):
        QueueConfig.parse(text, "test.conf")


# ---------------------------------------------------------------- local back-end, for real


def test_local_jobs_logs_with_header_and_footer(tmp_path):
    proc = run_jobs("JOB=1:3", "log/echo.JOB.log", "echo", "job", "JOB", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for i in (1, 2, 3):
        log = (tmp_path / "log" / f"echo.{i}.log").read_text().splitlines()
        assert log[0] == f"# echo job {i}"
        assert log[1].startswith("# Started at ") and log[2] == "#"
        assert log[3] == f"job {i}"
        assert re.fullmatch(r"# Accounting: time=\d+ threads=1", log[4])
        assert re.fullmatch(r"# Ended \(code 0\) at .*, elapsed time \d+ seconds", log[5])


def test_local_parallel_limit(tmp_path):
    """Six jobs of 0.4 s that record their start and end times: at most --max-jobs-run of them overlap."""
    record = "date +%s.%N > t/JOB.start; sleep 0.4; date +%s.%N > t/JOB.end"
    (tmp_path / "t").mkdir()
    proc = run_jobs(
        "--max-jobs-run", 2, "--poll_interval", 0.02, "JOB=1:6", "log/p.JOB.log", "sh", "-c", record, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    spans = [tuple(float((tmp_path / "t" / f"{i}.{e}").read_text()) for e in ("start", "end")) for i in range(1, 7)]
    overlap = max(sum(s <= start < e for s, e in spans) for start, _ in spans)
    assert overlap == 2


def test_local_failure_names_the_log(tmp_path):
    proc = run_jobs("JOB=1:4", "log/x.JOB.log", "test", "JOB", "-ne", "3", cwd=tmp_path)
    assert proc.returncode == 1
    assert "run_jobs: 1/4 jobs failed, see log/x.3.log" in proc.stderr
    assert "# Ended (code 1)" in (tmp_path / "log" / "x.3.log").read_text()
    assert "# Ended (code 0)" in (tmp_path / "log" / "x.4.log").read_text()  # the others still ran


def test_local_arguments_are_passed_literally(tmp_path):
    words = ["a b; touch PWNED", "$(touch PWNED2)", "`touch PWNED3`", "x|y>z", "*", 'it\'s "q"']
    proc = run_jobs("log/q.log", "printf", "%s\\n", *words, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "log" / "q.log").read_text().splitlines()[3:-2] == words
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log"]


def test_local_operator_words_make_a_pipeline(tmp_path):
    proc = run_jobs(
        "JOB=1:2", "log/x.JOB.log", "echo", "part JOB", "|", "tr", "a-z", "A-Z", ">", "out.JOB.txt", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out.2.txt").read_text() == "PART 2\n"


def test_usage_errors(tmp_path):
    assert run_jobs("--help", cwd=tmp_path).returncode == 0
    proc = run_jobs("JOB=1:2", "log/x.log", "echo", cwd=tmp_path)
    assert proc.returncode == 1 and "put JOB in its name" in proc.stderr
    proc = run_jobs("--backend", "slurm", "log/x.log", "echo", cwd=tmp_path)
    assert proc.returncode == 1 and "needs --config" in proc.stderr
    proc = run_jobs("-x", "1", "log/x.log", "echo", cwd=tmp_path)
    assert proc.returncode == 1 and "unknown option -x" in proc.stderr
    assert not (tmp_path / "log").exists()  # nothing ran


# ---------------------------------------------------------------- cluster back-ends, through fakes


ARRAY = {  # the array options of JOB=1:2 with --max-jobs-run 2, and the output path's index token
    "slurm": (["--array=1-2%2"], "%a"),
    "sge": (["-t", "1-2", "-tc", "2"], "$TASK_ID"),
    "pbs": (["-J", "1-2", "-W", "max_run_subjobs=2"], "^array_index^"),
}


def expected_submission(backend: str, options, work: Path, stem: str, name: str = "", array: bool = False):
    """The submit argv for log/<stem>.log, whose job name is <name> (default: the stem); array: for
    log/<stem>.JOB.log, JOB=1:2, --max-jobs-run 2."""
    name = name or stem
    array_options, token = ARRAY[backend] if array else ([], "")
    out = str(work / "log" / "q" / (f"{stem}.{token}.out" if array else f"{stem}.out"))
    script = str(work / "log" / "q" / (f"{stem}.JOB.sh" if array else f"{stem}.sh"))
    naming = {
        "slurm": ["--job-name", name, "--output", out, "--parsable"],
        "sge": ["-N", name, "-o", out, "-j", "y", "-S", "/bin/bash", "-terse"],
        "pbs": ["-N", name, "-o", out, "-j", "oe", "-S", "/bin/bash"],
    }[backend]
    command = ["sbatch", "--export=PATH,SLAP_VENV"] if backend == "slurm" else ["qsub", "-v", "PATH,SLAP_VENV"]
    return [*command, *options, *array_options, *naming, script]


SUBMIT_OPTIONS = {  # for --mem 4G --gpu 2 --num_threads 3 --time 1:00:00, then for no option, with the shipped confs
    "slurm": (
        ["--time", "1:00:00", "--mem-per-cpu", "4G", "--cpus-per-task", "3", "-p", "gpu", "--gres=gpu:2"],
        ["-p", "cpu"],
    ),
    "sge": (["-l", "h_rt=1:00:00", "-l", "mem_free=4G", "-pe", "smp", "3", "-l", "gpu=2", "-q", "g.q"], []),
    "pbs": (
        ["-l", "walltime=1:00:00", "-l", "select=1:ncpus=3:ngpus=2:mem=4G"],
        ["-l", "select=1:ncpus=1:ngpus=0:mem=4gb"],
    ),
}


@pytest.mark.parametrize("backend", ["slurm", "sge", "pbs"])
def test_scheduler_submissions(backend, tmp_path, fake_env):
    env, calls = fake_env
    work = work_dir(tmp_path)
    resources = ["--mem", "4G", "--gpu", "2", "--num_threads", "3", "--time", "1:00:00"]
    proc = run_jobs(
        "--backend",
        backend,
        "--config",
        CONF / f"{backend}.conf",
        *resources,
        *FAST,
        "--max-jobs-run",
        "2",
        "JOB=1:2",
        "log/train.JOB.log",
        "echo",
        "JOB",
        cwd=work,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    with_options, without = SUBMIT_OPTIONS[backend]
    assert calls() == [expected_submission(backend, with_options, work, "train", array=True)]  # one array job
    log = (work / "log" / "train.2.log").read_text()
    assert log.startswith("# echo 2\n") and "\n2\n# Accounting: time=" in log and "threads=3" in log
    assert (work / "log" / "q" / "train.2.done").read_text() == "0\n"

    proc = run_jobs(
        "--backend", backend, "--config", CONF / f"{backend}.conf", *FAST, "log/1st.log", "true", cwd=work, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert calls()[-1] == expected_submission(backend, without, work, "1st", "j1st")


@pytest.mark.parametrize("backend", ["slurm", "sge", "pbs"])
def test_scheduler_job_failure_propagates(backend, tmp_path, fake_env):
    env, _ = fake_env
    work = work_dir(tmp_path)
    proc = run_jobs(
        "--backend",
        backend,
        "--config",
        CONF / f"{backend}.conf",
        *FAST,
        "JOB=1:3",
        "log/x.JOB.log",
        "test",
        "JOB",
        "-ne",
        "2",
        cwd=work,
        env=env,
    )
    assert proc.returncode == 1
    assert "run_jobs: 1/3 jobs failed, see log/x.2.log" in proc.stderr
    assert (work / "log" / "q" / "x.2.done").read_text() == "1\n"


def three_unrun_tasks(backend: str, work: Path, env) -> subprocess.CompletedProcess:
    """JOB=1:3 submitted to the fake scheduler, which runs none of them (FAKE_RUN=0)."""
    conf = CONF / f"{backend}.conf"
    return run_jobs(
        "--backend",
        backend,
        "--config",
        conf,
        *FAST,
        "JOB=1:3",
        "log/x.JOB.log",
        "true",
        cwd=work,
        env={**env, "FAKE_RUN": "0"},
    )


@pytest.mark.parametrize(
    "backend, status_call",
    [
        ("slurm", ["squeue", "--noheader", "--array", "--states=all", "--format", "%K %T", "--jobs", "1001"]),
        ("sge", ["qstat", "-j", "1001"]),
        ("pbs", ["qstat", "1001[].server"]),
    ],
)
def test_vanished_array_fails_with_one_status_query_per_check(backend, status_call, tmp_path, fake_env):
    """Tasks the scheduler no longer knows and that wrote no done-marker (killed) are failures, not a hang; the
    scheduler is asked about the array once per check, not once per task."""
    env, calls = fake_env
    work = work_dir(tmp_path)
    proc = three_unrun_tasks(backend, work, env)
    assert proc.returncode == 1
    assert (
        "run_jobs: 3/3 jobs failed, see log/x.1.log (task 1, vanished from the queue, see log/q/x.1.out), log/x.2.log"
        in proc.stderr
    )
    accounting = {"slurm": [["sacct"]], "sge": [["qacct"]], "pbs": []}[backend]  # which keeps none: not waited for
    calls_after_submission = [c[:1] if c[0] in ("sacct", "qacct") else c for c in calls()[1:]]
    assert calls_after_submission == [status_call, status_call, *accounting]  # gone at two checks in a row


def test_slurm_end_states_name_the_failure(tmp_path, fake_env):
    """squeue's word on a task that ended without a done-marker is in the report; running ones are waited for."""
    env, calls = fake_env
    work = work_dir(tmp_path)
    squeue = Path(env["PATH"].split(os.pathsep)[0]) / "squeue"
    squeue.write_text(
        "#!/bin/bash\n"
        f"echo squeue >> {tmp_path}/squeue.calls\n"
        f"if [ $(wc -l < {tmp_path}/squeue.calls) -ge 4 ]; then echo 0 > {work}/log/q/x.3.done; fi\n"
        "printf '1 CANCELLED\\n2 TIMEOUT\\n3 RUNNING\\n'\n"
    )
    proc = three_unrun_tasks("slurm", work, env)
    assert proc.returncode == 1
    assert (
        "run_jobs: 2/3 jobs failed, see log/x.1.log (task 1, no exit status: the scheduler says cancelled, see "
        "log/q/x.1.out), log/x.2.log (task 2, no exit status: the scheduler says timeout, see log/q/x.2.out)"
        in proc.stderr
    )


# qacct -j of a real array job (tests/sge_cluster.py's cell; its ru_* lines left out, and most of task 2's): task 1
# ended, task 2 was qdel'ed while it ran; and of a job killed at its h_rt (not an array: taskid undefined).
QACCT = """==============================================================
qname        all.q
hostname     vm
group        root
owner        root
project      NONE
department   defaultdepartment
jobname      x
jobnumber    1001
taskid       1
account      sge
priority     0
qsub_time    Fri Dec  4 21:26:23 2026
start_time   Fri Dec  4 21:26:23 2026
end_time     Fri Dec  4 21:26:23 2026
granted_pe   NONE
slots        1
failed       0
exit_status  0
cpu          0.107s
maxvmem      0.000B
arid         undefined
ar_sub_time  undefined
category     NONE
==============================================================
qname        all.q
jobnumber    1001
taskid       2
failed       100 : assumedly after job
exit_status  137                  (Killed)
"""
QACCT_H_RT = """==============================================================
qname        all.q
hostname     vm
jobname      rt
jobnumber    3
taskid       undefined
failed       37  : qmaster enforced h_rt, h_cpu, or h_vmem limit
exit_status  137                  (Killed)
ru_wallclock 3s
"""


def test_sge_accounting_tells_how_tasks_without_a_marker_ended(tmp_path, fake_env):
    """Tasks gone from qstat without a marker: qacct's exit status and failed field (once per array and check);
    a task it has no record of is waited for two checks more, then has vanished."""
    env, calls = fake_env
    work = work_dir(tmp_path)
    qacct = Path(env["PATH"].split(os.pathsep)[0]) / "qacct"
    qacct.write_text(f"#!/bin/bash\necho qacct \"$@\" >> {tmp_path}/qacct.calls\ncat <<'EOF'\n{QACCT}EOF\n")
    proc = three_unrun_tasks("sge", work, env)
    assert proc.returncode == 1
    assert (
        "run_jobs: 2/3 jobs failed, see log/x.2.log (task 2, exit status 137: the scheduler says deleted (qdel) or "
        "killed by signal 9 (failed 100 : assumedly after job), see log/q/x.2.out), log/x.3.log (task 3, vanished "
        "from the queue, see log/q/x.3.out)\n" in proc.stderr
    )  # task 1: exit status 0 in the accounting, though its marker is missing
    assert (tmp_path / "qacct.calls").read_text() == "qacct -j 1001\n" * 3  # checks 2, 3 and 4
    qacct.write_text(f"#!/bin/bash\ncat <<'EOF'\n{QACCT_H_RT}EOF\n")
    proc = run_jobs("--backend", "sge", "--config", CONF / "sge.conf", *FAST, "log/x.log", "true", cwd=work,
                    env={**env, "FAKE_RUN": "0"})  # fmt: skip
    assert (
        "see log/x.log (exit status 137: the scheduler says failed 37 : qmaster enforced h_rt, h_cpu, or h_vmem "
        "limit, see log/q/x.out)" in proc.stderr
    )


def test_sacct_records_of_an_array():
    """sacct --allocations --parsable2 of an array, in sacct(1)'s format (no recording: the test Slurm has no
    slurmdbd, and Slurm 22.05 has no other accounting storage): ended tasks only, exit status and reason."""
    backend = SCHEDULERS["slurm"](Path("."), QueueConfig.read(CONF / "slurm.conf"), {})
    records = backend.accounting(
        "1001_1|COMPLETED|0:0\n1001_2|FAILED|3:0\n1001_3|CANCELLED by 0|0:15\n1001_4|TIMEOUT|0:0\n"
        "1001_5|OUT_OF_MEMORY|0:125\n1001_6|RUNNING|0:0\n1001_[7-9%2]|PENDING|0:0\n"
    )
    assert records == {
        "1": (0, ""),
        "2": (3, ""),
        "3": (None, "cancelled by 0"),
        "4": (None, "timeout"),
        "5": (None, "out of memory"),
    }
    assert backend.accounting("1002|FAILED|2:0\n") == {"": (2, "")}  # a single job
    assert backend.accounting_disabled("Slurm accounting storage is disabled\n")  # the test cluster's sacct says


def test_option_missing_from_config_fails_before_submitting(tmp_path, fake_env):
    env, calls = fake_env
    work = work_dir(tmp_path)
    proc = run_jobs(
        "--backend", "slurm", "--config", CONF / "slurm.conf", "--nodes", "2", "log/x.log", "true", cwd=work, env=env
    )
    assert proc.returncode == 1 and "--nodes 2 is not described in" in proc.stderr
    assert calls() == []


def test_ssh_round_robin(tmp_path, fake_env):
    env, calls = fake_env
    work = work_dir(tmp_path)
    (work / "hosts").write_text("# cluster\nnode-a\nnode-b  # gpu\n\n")
    proc = run_jobs(
        "--backend",
        "ssh",
        "--hosts",
        "hosts",
        "--max-jobs-run",
        1,
        "JOB=1:3",
        "log/s.JOB.log",
        "test",
        "JOB",
        "-ne",
        "3",
        cwd=work,
        env=env,
    )
    assert proc.returncode == 1
    assert "run_jobs: 1/3 jobs failed, see log/s.3.log" in proc.stderr
    assert [c[:4] for c in calls()] == [["ssh", "-o", "BatchMode=yes", host] for host in ("node-a", "node-b", "node-a")]
    assert all(c[4].startswith("bash -c ") and f"cd {work}" in c[4] for c in calls())
    assert (work / "log" / "s.2.log").read_text().startswith("# test 2 -ne 3\n")


# ---------------------------------------------------------------- several nodes

NODE_OPTIONS = {  # the shipped confs' options for --num_nodes 2
    "slurm": ["-p", "cpu", "--nodes", "2", "--ntasks-per-node", "1"],
    "sge": ["-pe", "mpi", "2", "-binding", "linear:1"],
    "pbs": ["-l", "select=2:ncpus=1:ngpus=0:mem=4gb", "-l", "place=scatter"],
}
LAUNCHER_OPTIONS = {  # what ESPnet's launcher gives for --ngpu 4 --num_nodes 2: one request a scheduler accepts
    "slurm": ["--cpus-per-task", "4", "-p", "gpu", "--gres=gpu:4", "--nodes", "2", "--ntasks-per-node", "1"],
    "sge": ["-l", "gpu=4", "-q", "g.q", "-pe", "mpi", "2", "-binding", "linear:4"],  # one -pe
    "pbs": ["-l", "select=2:ncpus=4:ngpus=4:mem=4gb", "-l", "place=scatter"],  # no -l ncpus beside select
}


@pytest.mark.parametrize("backend", ["slurm", "sge", "pbs"])
def test_launcher_options_on_several_nodes_make_one_consistent_request(backend):
    config = QueueConfig.read(CONF / f"{backend}.conf")
    assert config.submit_options({"gpu": "4", "num_threads": "4", "num_nodes": "2"}) == LAUNCHER_OPTIONS[backend]


def test_an_option_line_takes_over_the_options_it_names():
    config = QueueConfig.parse(
        "command qsub\noption cpus=* -l ncpus=$0\noption nodes=* -l select=$0:ncpus=${cpus}\n", "t.conf"
    )
    assert config.submit_options({"cpus": "2"}) == ["-l", "ncpus=2"]
    assert config.submit_options({"cpus": "2", "nodes": "3"}) == ["-l", "select=3:ncpus=2"]
    with pytest.raises(JobRunnerError, match=r"the line of --nodes uses \$\{cpus\}: give --cpus or a default"):
        config.submit_options({"nodes": "3"})


@pytest.mark.parametrize("backend", ["slurm", "sge", "pbs"])
def test_a_job_on_several_nodes_is_one_submission_asking_for_them(backend, tmp_path, fake_env):
    env, calls = fake_env
    work = work_dir(tmp_path)
    proc = run_jobs(
        "--backend",
        backend,
        "--config",
        CONF / f"{backend}.conf",
        *FAST,
        "--num_nodes",
        "2",
        "log/train.log",
        "true",
        cwd=work,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert calls() == [expected_submission(backend, NODE_OPTIONS[backend], work, "train")]


@pytest.mark.parametrize("backend", ["local", "ssh"])
def test_one_machine_back_ends_refuse_several_nodes(backend, tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("localhost\n")
    proc = run_jobs("--backend", backend, "--hosts", hosts, "--num_nodes", "2", "log/x.log", "true", cwd=tmp_path)
    assert proc.returncode == 1
    assert f"--num_nodes 2: the {backend} back-end runs each job on one machine" in proc.stderr
    assert not (tmp_path / "log").exists()


# srun --export=ALL <command>: runs the command once per node ($FAKE_NODES), each with the SLURM_* variables of
# its task, as srun does in an allocation of that many nodes with one task each; exits with the worst status.
FAKE_SRUN = """#!{python}
import json, os, subprocess, sys
nodes = int(os.environ["FAKE_NODES"])
with open(os.environ["FAKE_CALLS"], "a") as f:
    f.write(json.dumps(["srun", *sys.argv[1:3]]) + "\\n")
command = [a for a in sys.argv[1:] if not a.startswith("--export")]
tasks = [subprocess.Popen(command, env={{**os.environ, "SLURM_PROCID": str(i), "SLURM_NODEID": str(i),
         "SLURM_LOCALID": "0", "SLURM_NTASKS": str(nodes), "SLURM_STEP_NUM_NODES": str(nodes),
         "SLURM_STEP_NODELIST": "localhost"}}) for i in range(nodes)]
sys.exit(max(task.wait() for task in tasks))
"""


def test_espnet_launcher_trains_on_two_slurm_nodes_through_our_runner(corpus, bpe, tmp_path, fake_env):
    """``espnet2.bin.launch --num_nodes 2`` with utils/slurm.pl (our runner under the name the launcher knows):
    one sbatch job for 2 nodes, srun in it, two gloo ranks train and rank 0 writes the model."""
    from conftest import TINY_CONF
    from test_train_cli import data_options

    env, calls = fake_env
    srun = Path(env["PATH"].split(os.pathsep)[0]) / "srun"
    srun.write_text(FAKE_SRUN.format(python=sys.executable))
    srun.chmod(0o755)
    env = {
        **env,
        "FAKE_NODES": "2",
        "PATH": f"{srun.parent}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}" f"{os.environ['PATH']}",
    }  # the fakes, then python as path.sh puts it
    exp = tmp_path / "exp"
    utils = REPO / "egs" / "TEMPLATE" / "slap1" / "utils"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "espnet2.bin.launch",
            "--cmd",
            f"{utils}/slurm.pl --config {CONF}/slurm.conf {' '.join(FAST)}",
            "--log",
            str(exp / "train.log"),
            "--ngpu",
            "0",
            "--num_nodes",
            "2",
            "--init_file_prefix",
            str(exp / ".dist_init_"),
            "--",
            sys.executable,
            "-m",
            "espnet2_slap.bin.slap_train",
            "--config",
            str(TINY_CONF / "train_slap_tiny.yaml"),
            "--normalize",
            "none",
            *map(str, data_options(corpus, bpe)),
            "--train_shape_file",
            f"{corpus}/train/utt2dur",
            "--valid_shape_file",
            f"{corpus}/valid/utt2dur",
            "--max_epoch",
            "1",
            "--output_dir",
            str(exp),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    log = (exp / "train.log").read_text() if (exp / "train.log").exists() else ""
    assert proc.returncode == 0, proc.stderr[-3000:] + log[-5000:]
    sbatch, srun_call = calls()
    assert sbatch[0] == "sbatch" and sbatch[sbatch.index("--nodes") + 1] == "2"
    assert srun_call == ["srun", "--export=ALL", sys.executable]
    assert "--dist_launcher slurm" in log and "--dist_init_method file://" in log
    assert log.count("slap_train.py --config") == 2  # each task prints its command line
    assert re.search(r"\[\S+:0/2\] .* 1/1epoch started", log)  # rank 0 of world size 2 trained ...
    assert (exp / "1epoch.pth").exists()  # ... and saved the model
