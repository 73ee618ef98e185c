"""A recipe run keeps to itself (issue 13, item 4): ``kill -9`` of run.sh stops everything it started, and a
second run in the same experiment directory is refused, naming the first."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from conftest import REPO

GUARD = [sys.executable, "-m", "espnet2_slap.bin.run_guard"]


def marked(mark: str):
    """The pids of the processes whose environment holds ``mark``."""
    pids = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if mark.encode() in (entry / "environ").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_kill_9_of_the_starter_stops_every_process_of_the_run(tmp_path):
    """run.sh -> slap.sh (supervised) -> a child, a grandchild and a job in its own session, as run_jobs starts them."""
    mark = f"SLAP_TEST_MARK={uuid.uuid4().hex}"
    ready = tmp_path / "ready"
    run_sh = tmp_path / "run.sh"
    inner = f"sleep 300 & (sleep 300) & setsid sleep 300 & touch {ready}; wait"
    run_sh.write_text(f"#!/usr/bin/env bash\n{' '.join(GUARD)} supervise -- bash -c '{inner}'\n")
    run_sh.chmod(0o755)
    env = {**os.environ, mark.split("=")[0]: mark.split("=")[1], "PYTHONPATH": str(REPO)}
    starter = subprocess.Popen([str(run_sh)], cwd=tmp_path, env=env, start_new_session=True)
    try:
        assert wait_until(ready.exists, 30)
        assert len(marked(mark)) >= 5  # run.sh, the guard, bash, three sleeps
        os.kill(starter.pid, signal.SIGKILL)
        starter.wait()
        assert wait_until(lambda: not marked(mark), 15), f"left running: {marked(mark)}"
    finally:
        for pid in marked(mark):
            os.kill(pid, signal.SIGKILL)


def test_a_second_run_in_the_same_directory_is_refused_naming_the_first(tmp_path):
    exp = tmp_path / "exp"
    exp.mkdir()
    take = f"exec 9>>{exp}/.lock; {' '.join(GUARD)} lock --fd 9 {exp} || exit 1"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    first = subprocess.Popen(["bash", "-c", f"{take}; echo locked; exec sleep 300"], env=env, stdout=subprocess.PIPE)
    try:
        assert first.stdout.readline() == b"locked\n"
        second = subprocess.run(["bash", "-c", take], env=env, capture_output=True, text=True)
        assert second.returncode == 1
        assert f"{exp} is in use by another run: pid {first.pid} on " in second.stderr
        assert f"{first.pid} (sleep 300)" in second.stderr  # the process that still holds the lock
    finally:
        first.kill()
        first.wait()
    again = subprocess.run(["bash", "-c", take], env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr  # a lock ends with the last process of its run, however it ends


def test_sigterm_to_run_jobs_cancels_its_jobs(tmp_path):
    """The guard stops a run with SIGTERM: run_jobs takes it as Ctrl-C and cancels its jobs (on a cluster too)."""
    mark = f"SLAP_TEST_MARK={uuid.uuid4().hex}"
    env = {**os.environ, mark.split("=")[0]: mark.split("=")[1], "PYTHONPATH": str(REPO)}
    runner = subprocess.Popen(
        [sys.executable, "-m", "espnet2_slap.bin.run_jobs", "JOB=1:2", "log/x.JOB.log", "sleep", "300"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_until(lambda: len(marked(mark)) >= 3, 30)  # the runner and its two jobs
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(timeout=30) == 130
        assert "interrupted, running jobs cancelled" in runner.stderr.read()
        assert wait_until(lambda: not marked(mark), 15), f"left running: {marked(mark)}"
    finally:
        for pid in marked(mark):
            os.kill(pid, signal.SIGKILL)
