"""Run a recipe's parallel jobs the Kaldi way: ``JOB=1:N log/x.JOB.log command args...``.

Every job runs the same bash job script (``job_script``): it writes the log header, runs the command through
``bash -c`` with stdout and stderr appended to the log, then the footer with the exit status. The back-ends
only differ in where that script runs:

- ``local``: a subprocess here;
- ``ssh``: ``ssh host 'bash -c <script>'``, hosts taken round-robin from a file;
- ``slurm`` (sbatch), ``sge`` and ``pbs`` (qsub): ``schedulers.py``, one array job for ``JOB=1:N``.

Here and over ssh, ``--max-jobs-run`` is enforced by the runner: it starts a job when one ends.
"""

import os
import re
import shlex
import signal
import subprocess
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from espnet2_slap.queue.config import JobRunnerError

JOB_RANGE = re.compile(r"^([A-Za-z_]\w*)=(\d+)(?::(\d+))?$")
# Words passed to bash as they are, so that ``cmd '|' gzip '>' out.JOB.gz`` is a pipeline; all others are quoted.
SHELL_OPERATORS = frozenset({"|", "|&", "||", "&&", ";", "<", ">", ">>", "2>", "2>>", "&>", "2>&1", ">&2"})
VANISHED = -1  # exit status of a job that left the scheduler's queue without writing its done-marker


def log_stem(name: str) -> str:
    """A log file's name without ``.log``."""
    return name[: -len(".log")] if name.endswith(".log") else name


@dataclass(frozen=True)
class Task:
    """One job: its number, the shell command line and the log file (as the user wrote it, JOB substituted);
    log_template and var: the log as written (``log/x.JOB.log``) and the job variable (``JOB``, "" for one job)."""

    index: int
    command: str
    log: Path
    log_template: str = ""
    var: str = ""

    @property
    def name(self) -> str:
        """The log file's name without ``.log``: job name and stem of the files in ``<logdir>/q/``."""
        return log_stem(self.log.name)

    def queue_file(self, suffix: str) -> Path:
        return self.log.parent / "q" / f"{self.name}{suffix}"


def shell_join(words: Sequence[str]) -> str:
    """A bash command line from argv words: shell operators bare, every other word quoted with shlex.quote.

    As in Kaldi, the command may be a pipeline given as separate words (``\\|``, ``'>'``). Unlike Kaldi, which
    quotes only words that contain whitespace, a word is never interpreted by the job's shell: ``$x``, globs
    and ``;`` inside a word stay literal (the recipe's own shell has expanded what it meant to expand).
    """
    return " ".join(w if w in SHELL_OPERATORS else shlex.quote(w) for w in words)


def make_tasks(argv: Sequence[str]) -> List[Task]:
    """Tasks from ``[NAME=start:end] log command...``: NAME (any identifier, usually JOB) is replaced by the
    job number wherever it occurs in the log name and in the command's words, as Kaldi's run.pl does."""
    words = list(argv)
    var, start, end = None, 1, 1
    match = JOB_RANGE.match(words[0]) if words else None
    if match:
        var, start = match.group(1), int(match.group(2))
        end = int(match.group(3)) if match.group(3) is not None else start
        words = words[1:]
        if end < start:
            raise JobRunnerError(f"empty job range {argv[0]}")
    if len(words) < 2:
        raise JobRunnerError("expected [JOB=1:N] <log file> <command> [args...]")
    log, command = words[0], words[1:]
    if end > start and var not in log:
        raise JobRunnerError(f"{end - start + 1} jobs would share one log file: put {var} in its name ({log})")

    def sub(word: str, index: int) -> str:
        return word.replace(var, str(index)) if var else word

    return [
        Task(i, shell_join([sub(w, i) for w in command]), Path(sub(log, i)), log, var or "")
        for i in range(start, end + 1)
    ]


def job_script(task: Task, cwd: Path, threads: int = 1, marker: Optional[Path] = None, path_sh: bool = False) -> str:
    """The bash script of one job: Kaldi's log header, the command, the footer; then the done-marker if any.

    path_sh: source ``./path.sh`` when there is one (jobs on other machines, whose environment is bare).
    """
    q = shlex.quote
    log = q(str(cwd / task.log))
    lines = ["#!/bin/bash", f"cd {q(str(cwd))} || exit 1"]
    if path_sh:
        lines.append("if [ -f ./path.sh ]; then . ./path.sh; fi")
    lines += [
        f"printf '# %s\\n# Started at %s\\n#\\n' {q(task.command)} \"$(date)\" > {log}",
        "start=$(date +%s)",
        f"bash -c {q(task.command)} < /dev/null >> {log} 2>&1",
        "status=$?",
        "elapsed=$(( $(date +%s) - start ))",
        f"printf '# Accounting: time=%s threads={threads}\\n# Ended (code %s) at %s, elapsed time %s seconds\\n'"
        f' "$elapsed" "$status" "$(date)" "$elapsed" >> {log}',
    ]
    if marker is not None:
        tmp = q(str(cwd / marker) + ".tmp")
        lines.append(f'echo "$status" > {tmp} && mv -f {tmp} {q(str(cwd / marker))}')
    lines.append('exit "$status"')
    return "\n".join(lines) + "\n"


class Backend:
    """Runs tasks somewhere and tells how each ended."""

    poll_interval = 0.1  # seconds between two looks at the running jobs

    def __init__(self, cwd: Path, threads: int = 1):
        self.cwd, self.threads = cwd, threads
        self.why: Dict[Task, str] = {}  # the scheduler's reason for a task's end, in words ("" if none)

    def run(
        self, tasks: Sequence[Task], max_jobs_run: int = 0, poll_interval: Optional[float] = None
    ) -> Dict[Task, int]:
        """Run every task, at most max_jobs_run at a time (0: no limit); -> exit status of each (``VANISHED``
        when it ended without one). On an exception (Ctrl-C included) the jobs still running are cancelled."""
        raise NotImplementedError


class LocalBackend(Backend):
    """Runs each job as a subprocess of this machine, in its own process group."""

    def argv(self, task: Task) -> List[str]:
        return ["bash", "-c", job_script(task, self.cwd, self.threads)]

    def start(self, task: Task) -> subprocess.Popen:
        return subprocess.Popen(self.argv(task), cwd=self.cwd, stdin=subprocess.DEVNULL, start_new_session=True)

    def run(
        self, tasks: Sequence[Task], max_jobs_run: int = 0, poll_interval: Optional[float] = None
    ) -> Dict[Task, int]:
        interval = self.poll_interval if poll_interval is None else poll_interval
        pending, running, status = deque(tasks), {}, {}
        for task in tasks:
            (self.cwd / task.log).parent.mkdir(parents=True, exist_ok=True)
        try:
            while pending or running:
                while pending and (max_jobs_run <= 0 or len(running) < max_jobs_run):
                    task = pending.popleft()
                    running[task] = self.start(task)
                for task, proc in list(running.items()):
                    if proc.poll() is not None:
                        status[task] = proc.returncode
                        del running[task]
                if running:
                    time.sleep(interval)
        except BaseException:
            for proc in running.values():
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
            raise
        return status


class SshBackend(LocalBackend):
    """Runs the jobs on the hosts in turn (round-robin), each with ``ssh host 'bash -c <script>'`` (a shared file system
    is assumed: the script cds to this directory and sources ./path.sh there)."""

    def __init__(self, cwd: Path, hosts: Sequence[str], threads: int = 1):
        super().__init__(cwd, threads)
        if not hosts:
            raise JobRunnerError("the ssh back-end needs at least one host")
        self.hosts, self.started = list(hosts), 0

    def argv(self, task: Task) -> List[str]:
        host = self.hosts[self.started % len(self.hosts)]
        self.started += 1
        script = job_script(task, self.cwd, self.threads, path_sh=True)
        return ["ssh", "-o", "BatchMode=yes", host, f"bash -c {shlex.quote(script)}"]


def read_hosts(path: Path) -> List[str]:
    """Host names, one a line; ``#`` starts a comment."""
    return [h for h in (re.sub(r"#.*", "", line).strip() for line in Path(path).read_text().splitlines()) if h]


def failure_report(status: Dict[Task, int], why: Dict[Task, str] = None, shown: int = 10) -> Tuple[int, str]:
    """(number failed, ``run_jobs: 1/4 jobs failed, see log/x.3.log (task 3, exit status 1)``); 0 and "" when all
    succeeded. Each failed task is named by its log, its index (in an array), its exit status (``no exit status``
    for ``VANISHED``) and, where the scheduler gave one, its reason, with the scheduler's output file.

    why: the scheduler's reason for a task's end, in words (``cancelled``, ``deleted (qdel) or killed by signal 9
    (failed 100 : assumedly after job)``), from its accounting or its last state; "" or absent if none.
    """
    why = why or {}
    failed = sorted((t for t, code in status.items() if code != 0), key=lambda t: t.index)
    if not failed:
        return 0, ""

    def describe(task: Task) -> str:
        code, reason = status[task], why.get(task, "")
        what = [f"task {task.index}"] if task.var else []
        if code == VANISHED and not reason:
            what.append(f"vanished from the queue, see {task.queue_file('.out')}")
        elif reason:
            said = "no exit status" if code == VANISHED else f"exit status {code}"
            what.append(f"{said}: the scheduler says {reason}, see {task.queue_file('.out')}")
        else:
            what.append(f"exit status {code}")
        return f"{task.log} ({', '.join(what)})"

    logs = [describe(t) for t in failed]
    more = f" and {len(logs) - shown} more" if len(logs) > shown else ""
    return len(failed), f"run_jobs: {len(failed)}/{len(status)} jobs failed, see {', '.join(logs[:shown])}{more}"
