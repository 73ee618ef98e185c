"""What the tests on a real scheduler share (tests/test_slurm_real.py, tests/test_sge_real.py): starting the test
cluster or skipping, wrappers that record the clients' calls, the job runner and the mini_synth recipe on it."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

import pytest
from conftest import REPO, copy_recipes

CONF = REPO / "egs" / "TEMPLATE" / "slap1" / "conf"
QUICK = ["--poll_interval", "0.2", "--check_interval", "0.5"]
DATA = ["--local_data_opts", "--num_train 16 --num_valid 8 --num_test 8 --seconds 2"]
COMMON = [*DATA, "--nj", "2", "--train_args", "--max_epoch 1"]
# A task that records when it ran, in t/<index>.start and t/<index>.end (JOB: its index), and says its index.
TIMED_TASK = "date +%s.%N > t/JOB.start; sleep 1; date +%s.%N > t/JOB.end; echo task JOB"
# A wrapper of a client: records [its name, *argv] as a json line in $CALLS, then runs the real one.
RECORDER = """#!{python}
import json, os, sys
from pathlib import Path
name = Path(sys.argv[0]).name
with open(os.environ["CALLS"], "a") as f:
    f.write(json.dumps([name, *sys.argv[1:]]) + "\\n")
os.execv("{real}/" + name, [name, *sys.argv[1:]])
"""


def started(cluster, missing: List[str], packages: str, user: str):
    """Yield the cluster started, stop it after the tests that use it (also when one fails); skip them when
    programs are missing or not root (user: why root), but fail in CI (CI set), where they cannot be skipped."""
    problem = f"{packages} programs missing: {' '.join(missing)}" if missing else ""
    if not problem and os.geteuid() != 0:
        problem = f"the test cluster runs its daemons as root ({user})"
    if problem:
        message = f"{problem}: run tools/setup_test.sh (as root)"
        if os.environ.get("CI"):
            pytest.fail(f"real-scheduler tests cannot be skipped in CI: {message}")
        pytest.skip(message)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def recording(env: Dict[str, str], tmp_path: Path, names: Sequence[str], real: str) -> Tuple[dict, Callable]:
    """(env whose clients names record their calls, calls()): the real clients in directory real behind wrappers."""
    bin_dir = tmp_path / "recorders"
    bin_dir.mkdir()
    for name in names:
        (bin_dir / name).write_text(RECORDER.format(python=sys.executable, real=real))
        (bin_dir / name).chmod(0o755)
    calls = tmp_path / "calls.jsonl"
    env = {**env, "PATH": f"{bin_dir}:{Path(sys.executable).parent}:{env['PATH']}", "CALLS": str(calls)}
    return env, lambda: [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []


def runner_argv(backend: str, *args, conf: Path = None) -> List[str]:
    """``run_jobs --backend backend --config conf`` (default: the shipped conf/<backend>.conf) polling every 0.2 s."""
    argv = [sys.executable, "-m", "espnet2_slap.bin.run_jobs", "--backend", backend, "--config"]
    return argv + [str(conf or CONF / f"{backend}.conf"), *QUICK, *map(str, args)]


def run_jobs(backend: str, *args, cwd: Path, env: dict, conf: Path = None) -> subprocess.CompletedProcess:
    """The runner_argv run in cwd, its output captured."""
    return subprocess.run(runner_argv(backend, *args, conf=conf), cwd=cwd, env=env, capture_output=True, text=True)


def end_task_2(backend: str, env: dict, cwd: Path, end: Callable[[], None]) -> Tuple[int, str]:
    """JOB=1:2 log/s.JOB.log whose task 2 sleeps 2 minutes, run until end(), called once task 2 runs (its log is
    there), ends it: (the runner's exit status, its stderr)."""
    command = ["JOB=1:2", "log/s.JOB.log", "sh", "-c", "[ JOB = 1 ] || sleep 120"]
    runner = subprocess.Popen(runner_argv(backend, *command), cwd=cwd, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (cwd / "log" / "s.2.log").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        end()
        _, stderr = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
    return runner.returncode, stderr


def most_at_once(times: Path, count: int) -> int:
    """The most of TIMED_TASK's tasks 1..count that ran at one time, from their start and end times in times."""
    spans = [tuple(float((times / f"{i}.{e}").read_text()) for e in ("start", "end")) for i in range(1, count + 1)]
    return max(sum(s <= start < e for s, e in spans) for start, _ in spans)


def run_one_at_a_time(backend: str, env: dict, cwd: Path, calls: Callable, status_client: str) -> List[str]:
    """JOB=1:3 of TIMED_TASK with --max-jobs-run 1, checked: the tasks ran one at a time, each logged its end and
    has the scheduler's output file, and the scheduler was asked about them with one status_client call a check
    (0.5 s), always the same; -> the argv of the one submission."""
    (cwd / "t").mkdir()
    start = time.monotonic()
    proc = run_jobs(backend, "--max-jobs-run", 1, "JOB=1:3", "log/p.JOB.log", "sh", "-c", TIMED_TASK, cwd=cwd, env=env)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    assert most_at_once(cwd / "t", 3) == 1  # one at a time
    polls = [c for c in calls() if c[0] == status_client]
    assert polls and all(c == polls[0] for c in polls)  # always the one array
    assert len(polls) <= elapsed / 0.5 + 1, (len(polls), elapsed)
    for i in (1, 2, 3):
        assert f"task {i}\n# Accounting:" in (cwd / "log" / f"p.{i}.log").read_text()
        assert (cwd / "log" / "q" / f"p.{i}.out").exists()  # the scheduler's output of each task
    submissions = [c for c in calls() if c[0] not in (status_client, "sacct", "qacct")]
    assert len(submissions) == 1, submissions
    return submissions[0]


def check_a_failing_task(backend: str, env: dict, cwd: Path) -> None:
    """JOB=1:2 whose task 2 exits 1: the runner fails naming task 2, its exit status and its log."""
    proc = run_jobs(backend, "JOB=1:2", "log/x.JOB.log", "test", "JOB", "-ne", "2", cwd=cwd, env=env)
    assert proc.returncode == 1
    assert "run_jobs: 1/2 jobs failed, see log/x.2.log (task 2, exit status 1)\n" in proc.stderr
    assert "# Ended (code 1)" in (cwd / "log" / "x.2.log").read_text()


def recipe_copy(root: Path) -> Path:
    """A copy of the mini_synth recipe whose cmd.sh polls the schedulers every 0.2 s (instead of 10), beside a
    tools/venv link to this checkout's, so that path.sh in a job finds the environment as in a clone."""
    recipe = copy_recipes(root, "mini_synth") / "mini_synth" / "slap1"
    (root / "tools").mkdir()
    (root / "tools" / "venv").symlink_to(REPO / "tools" / "venv")
    cmd_sh = recipe / "cmd.sh"
    text = cmd_sh.read_text()
    cmd_sh.unlink()  # a link to the template in a recipe of the old shape: edit a copy
    text, count = re.subn(r'(--config conf/[^" ]+\.conf)"', rf'\1 {" ".join(QUICK)}"', text)
    assert count >= 2, "cmd.sh sets no --config conf/<backend>.conf"  # slurm's and sge|pbs's
    cmd_sh.write_text(text)
    return recipe


def on(env: dict, backend: str, recipe: Path) -> dict:
    """The environment of the recipe's run.sh with cmd_backend=backend."""
    return {**env, "cmd_backend": backend, "MAIN_ROOT": str(recipe.parents[2])}
