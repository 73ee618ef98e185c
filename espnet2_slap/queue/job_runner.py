"""Run a recipe's parallel jobs the Kaldi way: ``JOB=1:N log/x.JOB.log command args...``.

Every job runs the same bash job script (``job_script``): it writes the log header, runs the command through
``bash -c`` with stdout and stderr appended to the log, then the footer with the exit status. The back-ends
only differ in where that script runs:

- ``local``: a subprocess here;
- ``ssh``: ``ssh host 'bash -c <script>'``, hosts taken round-robin from a file;
- ``slurm`` (sbatch), ``sge`` and ``pbs`` (qsub): one submission per job, options from a Kaldi-style queue
  config. The script also writes its exit status to a done-marker file ``<logdir>/q/<name>.done`` that the
  runner polls for; the scheduler is asked every ``check_interval`` seconds whether a job without a marker
  still exists, and a job it reports gone at two checks in a row has vanished (killed by the scheduler: time
  or memory limit, node failure) and counts as failed.

``--max-jobs-run`` is enforced by the runner for all back-ends: it starts (or submits) a job when one ends.
"""

import os
import re
import shlex
import signal
import subprocess
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

JOB_RANGE = re.compile(r"^([A-Za-z_]\w*)=(\d+)(?::(\d+))?$")
# Words passed to bash as they are, so that ``cmd '|' gzip '>' out.JOB.gz`` is a pipeline; all others are quoted.
SHELL_OPERATORS = frozenset({"|", "|&", "||", "&&", ";", "<", ">", ">>", "2>", "2>>", "&>", "2>&1", ">&2"})
VANISHED = -1  # exit status of a job that left the scheduler's queue without writing its done-marker


class JobRunnerError(RuntimeError):
    """A usage, configuration or submission error (not a failing job)."""


@dataclass(frozen=True)
class Task:
    """One job: its number, the shell command line and the log file (as the user wrote it, JOB substituted)."""

    index: int
    command: str
    log: Path

    @property
    def name(self) -> str:
        """The log file's name without ``.log``: job name and stem of the files in ``<logdir>/q/``."""
        return self.log.name[: -len(".log")] if self.log.name.endswith(".log") else self.log.name

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

    return [Task(i, shell_join([sub(w, i) for w in command]), Path(sub(log, i))) for i in range(start, end + 1)]


@dataclass
class QueueConfig:
    """A Kaldi/ESPnet queue config (``conf/slurm.conf``)::

    command sbatch --export=PATH          # the submit command and its fixed options
    option mem=* --mem-per-cpu $0         # --mem VALUE adds these options, $0 replaced by VALUE
    option mem=0                          # --mem 0 adds nothing (an exact value wins over *)
    default gpu=0                         # the value when --gpu is not given
    option gpu=0 -p cpu
    option gpu=* -p gpu --gres=gpu:$0
    """

    command: List[str]
    rules: Dict[str, Dict[str, List[str]]] = field(default_factory=dict)  # name -> {value or "*": options}
    defaults: Dict[str, str] = field(default_factory=dict)
    source: str = "queue config"

    @classmethod
    def parse(cls, text: str, source: str = "queue config") -> "QueueConfig":
        command, rules, defaults = None, {}, {}
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = re.sub(r"\s*#.*", "", raw).strip()
            if not line:
                continue
            keyword, rest = (line.split(None, 1) + [""])[:2]
            spec, options = (rest.split(None, 1) + [""])[:2]
            name, eq, value = spec.partition("=")
            if keyword == "command" and rest:
                command = shlex.split(rest)
            elif keyword == "option" and eq and name and value:
                if value == "*" and "$0" not in options:
                    raise JobRunnerError(f"{source}:{lineno}: 'option {name}=*' needs $0 in its options: {raw}")
                rules.setdefault(name, {})[value] = shlex.split(options)
            elif keyword == "default" and eq and name and value and not options:
                defaults[name] = value
            else:
                raise JobRunnerError(f"{source}:{lineno}: cannot parse '{raw}' (command/option/default lines)")
        if command is None:
            raise JobRunnerError(f"{source}: no 'command' line")
        return cls(command, rules, defaults, source)

    @classmethod
    def read(cls, path: Path) -> "QueueConfig":
        return cls.parse(Path(path).read_text(), str(path))

    def submit_options(self, given: Dict[str, str]) -> List[str]:
        """The options for the given values (defaults filled in), in the order of the config's option lines."""
        values = {**self.defaults, **given}
        for name, value in values.items():
            if name not in self.rules or (value not in self.rules[name] and "*" not in self.rules[name]):
                raise JobRunnerError(f"option --{name} {value} is not described in {self.source}")
        options = []
        for name, by_value in self.rules.items():
            if name in values:
                value = values[name]
                options += by_value[value] if value in by_value else [o.replace("$0", value) for o in by_value["*"]]
        return options


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
    """Starts jobs and tells when they end; ``start`` returns a handle that ``poll`` and ``cancel`` take."""

    poll_interval = 0.1  # seconds between two looks at the running jobs

    def __init__(self, cwd: Path, threads: int = 1):
        self.cwd, self.threads = cwd, threads

    def start(self, task: Task):
        raise NotImplementedError

    def poll(self, handle) -> Optional[int]:
        """The job's exit status (``VANISHED`` when it disappeared), None while it runs."""
        raise NotImplementedError

    def cancel(self, handle) -> None:
        raise NotImplementedError


class LocalBackend(Backend):
    """Runs each job as a subprocess of this machine, in its own process group."""

    def argv(self, task: Task) -> List[str]:
        return ["bash", "-c", job_script(task, self.cwd, self.threads)]

    def start(self, task: Task) -> subprocess.Popen:
        return subprocess.Popen(self.argv(task), cwd=self.cwd, stdin=subprocess.DEVNULL, start_new_session=True)

    def poll(self, handle: subprocess.Popen) -> Optional[int]:
        return handle.poll()

    def cancel(self, handle: subprocess.Popen) -> None:
        if handle.poll() is None:
            os.killpg(handle.pid, signal.SIGTERM)


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


@dataclass
class Submitted:
    """A job handed to the scheduler; times_gone counts the checks in a row that did not find it."""

    task: Task
    job_id: str
    last_check: float
    times_gone: int = 0


class SchedulerBackend(Backend):
    """Submits each job script (``<logdir>/q/<name>.sh``) with the config's command; waits for done-markers."""

    poll_interval = 10.0

    def __init__(
        self, cwd: Path, config: QueueConfig, options: Dict[str, str], threads: int = 1, check_interval: float = 120.0
    ):
        super().__init__(cwd, threads)
        self.config, self.options, self.check_interval = config, options, check_interval
        config.submit_options(options)  # an option the config does not describe fails before any submission

    def naming_options(self, task: Task) -> List[str]:
        """Job name, the scheduler's own output file, and what makes the submit command print the job id."""
        raise NotImplementedError

    def job_id(self, stdout: str) -> str:
        raise NotImplementedError

    def status_argv(self, job_id: str) -> List[str]:
        """A command that exits 0 and prints something while the scheduler knows the job."""
        raise NotImplementedError

    def cancel_argv(self, job_id: str) -> List[str]:
        raise NotImplementedError

    def submit_argv(self, task: Task) -> List[str]:
        script = self.cwd / task.queue_file(".sh")
        return [
            *self.config.command,
            *self.config.submit_options(self.options),
            *self.naming_options(task),
            str(script),
        ]

    def start(self, task: Task) -> Submitted:
        marker = task.queue_file(".done")
        (self.cwd / marker).parent.mkdir(parents=True, exist_ok=True)
        (self.cwd / marker).unlink(missing_ok=True)
        (self.cwd / task.queue_file(".sh")).write_text(job_script(task, self.cwd, self.threads, marker, True))
        argv = self.submit_argv(task)
        proc = subprocess.run(argv, cwd=self.cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise JobRunnerError(f"submission failed ({proc.returncode}): {shlex.join(argv)}\n{proc.stderr.strip()}")
        return Submitted(task, self.job_id(proc.stdout), time.monotonic())

    def poll(self, handle: Submitted) -> Optional[int]:
        status = self.read_marker(handle.task)
        if status is not None or time.monotonic() - handle.last_check < self.check_interval:
            return status
        handle.last_check = time.monotonic()
        proc = subprocess.run(self.status_argv(handle.job_id), capture_output=True, text=True)
        known = proc.returncode == 0 and proc.stdout.strip()
        handle.times_gone = 0 if known else handle.times_gone + 1
        # Gone twice in a row: the job cannot merely have ended between our two looks (or its marker be late).
        return VANISHED if handle.times_gone >= 2 and self.read_marker(handle.task) is None else None

    def read_marker(self, task: Task) -> Optional[int]:
        try:
            return int((self.cwd / task.queue_file(".done")).read_text())
        except (FileNotFoundError, ValueError):
            return None

    def cancel(self, handle: Submitted) -> None:
        subprocess.run(self.cancel_argv(handle.job_id), capture_output=True)


def job_name(task: Task) -> str:
    """The log name reduced to characters every scheduler accepts, not starting with a digit."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", task.name)
    return name if name[:1].isalpha() else "j" + name


class SlurmBackend(SchedulerBackend):
    def naming_options(self, task: Task) -> List[str]:
        return ["--job-name", job_name(task), "--output", str(self.cwd / task.queue_file(".out")), "--parsable"]

    def job_id(self, stdout: str) -> str:
        return stdout.strip().split(";")[0]  # --parsable prints "id" or "id;cluster"

    def status_argv(self, job_id: str) -> List[str]:
        return ["squeue", "--noheader", "--format", "%T", "--jobs", job_id]

    def cancel_argv(self, job_id: str) -> List[str]:
        return ["scancel", job_id]


class SgeBackend(SchedulerBackend):
    def naming_options(self, task: Task) -> List[str]:
        out = str(self.cwd / task.queue_file(".out"))
        return ["-N", job_name(task), "-o", out, "-j", "y", "-S", "/bin/bash", "-terse"]

    def job_id(self, stdout: str) -> str:
        return stdout.strip().split(".")[0]  # -terse prints the id alone

    def status_argv(self, job_id: str) -> List[str]:
        return ["qstat", "-j", job_id]

    def cancel_argv(self, job_id: str) -> List[str]:
        return ["qdel", job_id]


class PbsBackend(SgeBackend):
    def naming_options(self, task: Task) -> List[str]:
        out = str(self.cwd / task.queue_file(".out"))
        return ["-N", job_name(task), "-o", out, "-j", "oe", "-S", "/bin/bash"]

    def job_id(self, stdout: str) -> str:
        return stdout.strip()  # "123.server", which qstat and qdel want whole

    def status_argv(self, job_id: str) -> List[str]:
        return ["qstat", job_id]


SCHEDULERS = {"slurm": SlurmBackend, "sge": SgeBackend, "pbs": PbsBackend}
BACKENDS = ("local", *SCHEDULERS, "ssh")


def run_tasks(
    tasks: Sequence[Task], backend: Backend, max_jobs_run: int = 0, poll_interval: Optional[float] = None
) -> Dict[Task, int]:
    """Run every task, at most max_jobs_run at a time (0: no limit); -> exit status of each.

    On an exception (Ctrl-C included) the jobs still running are cancelled.
    """
    interval = backend.poll_interval if poll_interval is None else poll_interval
    pending, running, status = deque(tasks), {}, {}
    for task in tasks:
        (backend.cwd / task.log).parent.mkdir(parents=True, exist_ok=True)
    try:
        while pending or running:
            while pending and (max_jobs_run <= 0 or len(running) < max_jobs_run):
                task = pending.popleft()
                running[task] = backend.start(task)
            for task, handle in list(running.items()):
                code = backend.poll(handle)
                if code is not None:
                    status[task] = code
                    del running[task]
            if running:
                time.sleep(interval)
    except BaseException:
        for handle in running.values():
            backend.cancel(handle)
        raise
    return status


def failure_report(status: Dict[Task, int], shown: int = 10) -> Tuple[int, str]:
    """(number failed, ``run_jobs: 1/4 jobs failed, see log/x.3.log``); 0 and "" when all succeeded."""
    failed = sorted((t for t, code in status.items() if code != 0), key=lambda t: t.index)
    if not failed:
        return 0, ""
    logs = [
        str(t.log) + (f" (vanished from the queue, see {t.queue_file('.out')})" if status[t] == VANISHED else "")
        for t in failed
    ]
    more = f" and {len(logs) - shown} more" if len(logs) > shown else ""
    return len(failed), f"run_jobs: {len(failed)}/{len(status)} jobs failed, see {', '.join(logs[:shown])}{more}"
