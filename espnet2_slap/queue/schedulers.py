"""The cluster back-ends of the job runner: Slurm (sbatch), Sun/Son of Grid Engine and PBS Professional (qsub).

``JOB=1:N`` is one array job (``sbatch --array=1-N%M``, ``qsub -t 1-N -tc M``, ``qsub -J 1-N -W
max_run_subjobs=M``; M is ``--max-jobs-run``, which the scheduler enforces); one job is a plain submission. Each
task runs its own job script ``<logdir>/q/<name>.sh``, which also writes the task's exit status to a done-marker
``<logdir>/q/<name>.done``; the array's script (``<logdir>/q/x.JOB.sh`` for ``x.JOB.log``) picks the task's
script by its index.

The runner polls for the markers and asks the scheduler about the job, once per array, every ``check_interval``
seconds. A task without a marker that the scheduler reports ended (Slurm's CANCELLED, TIMEOUT, ...) or no longer
knows, at two checks in a row, has ended without telling: the runner then asks the scheduler's accounting
(``qacct -j`` for SGE, ``sacct`` for Slurm; once per array and check) for its exit status and the scheduler's
reason (SGE's ``failed`` field: deleted, killed at a limit, ...). Where there is no accounting, or its record is
still missing two checks later (accounting is written a few seconds after a job ends), the task's own done-marker
is read once more, and failing that it failed without an exit status, with the scheduler's last word on it.
A task whose marker is there is done at once: the marker is the exit status of the task's script, which is what
the accounting records for it too.
"""

import re
import shlex
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from espnet2_slap.queue.config import JobRunnerError, QueueConfig
from espnet2_slap.queue.job_runner import VANISHED, Backend, Task, job_script, log_stem

Record = Tuple[Optional[int], str]  # what the accounting says of a task: (exit status or None, reason or "")


def describe_state(state: str) -> str:
    """A scheduler's state in words: ``OUT_OF_MEMORY`` -> ``out of memory``."""
    return state.lower().replace("_", " ")


def task_state(states: Dict[str, str], task: Task) -> Optional[str]:
    """A task's state in a status query's ``states``: by its array index, else the whole job's (None: unknown)."""
    return states.get(str(task.index), states.get(""))


def job_name(name: str) -> str:
    """A name reduced to characters every scheduler accepts, not starting with a digit."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    return name if name[:1].isalpha() else "j" + name


def array_name(task: Task) -> str:
    """The name of a task's array: its log template's name without ``.log`` and the job variable
    (``log/format.JOB.log`` -> ``format``, as Kaldi's queue.pl names it)."""
    name = log_stem(Path(task.log_template).name)
    return name.replace(f".{task.var}", "").replace(task.var, "").strip(".") or "job"


def array_script(task: Task) -> Path:
    """The script of the array that picks each task's own: ``log/q/x.JOB.sh`` for ``log/x.JOB.log``."""
    return task.log.parent / "q" / f"{log_stem(Path(task.log_template).name)}.sh"


def array_output(task: Task, index_token: str) -> Path:
    """The scheduler's output file of every task of the array, with index_token for the task index: for
    ``log/x.JOB.log`` ``log/q/x.%a.out``, which is ``Task.queue_file(".out")`` of each task."""
    template = Path(task.log_template)
    return Path(str(template.parent / "q" / f"{log_stem(template.name)}.out").replace(task.var, index_token))


class SchedulerBackend(Backend):
    """Submits the tasks with the config's command, as one array job; waits for their done-markers."""

    poll_interval = 10.0
    index_variable = ""  # the environment variable holding an array task's index
    index_token = ""  # what the scheduler replaces by the task's index in the output path
    ended_states = frozenset()  # states in which the scheduler reports a job that has ended

    def __init__(
        self, cwd: Path, config: QueueConfig, options: Dict[str, str], threads: int = 1, check_interval: float = 120.0
    ):
        super().__init__(cwd, threads)
        self.config, self.options, self.check_interval = config, options, check_interval
        config.submit_options(options)  # an option the config does not describe fails before any submission

    def naming_options(self, name: str, output: str) -> List[str]:
        """Job name, the scheduler's own output file, and what makes the submit command print the job id."""
        raise NotImplementedError

    def array_options(self, first: int, last: int, max_jobs_run: int) -> List[str]:
        raise NotImplementedError

    def job_id(self, stdout: str) -> str:
        raise NotImplementedError

    def status_argv(self, job_id: str) -> List[str]:
        """A command that exits 0 and prints something while the scheduler knows the job."""
        raise NotImplementedError

    def states(self, proc: subprocess.CompletedProcess) -> Dict[str, str]:
        """From the status command's output: array index ("" for all tasks) -> state; {} if the job is unknown."""
        return {"": "known"} if proc.returncode == 0 and proc.stdout.strip() else {}

    def cancel_argv(self, job_id: str) -> List[str]:
        raise NotImplementedError

    def accounting_argv(self, job_id: str) -> List[str]:
        """The accounting query of a job (all its tasks), [] where the scheduler has none."""
        return []

    def accounting(self, stdout: str) -> Dict[str, Record]:
        """From the accounting query's output: array index ("" for a single job) -> (exit status or None, reason)."""
        return {}

    def submit_argv(self, tasks: Sequence[Task], max_jobs_run: int) -> List[str]:
        first = tasks[0]
        if len(tasks) == 1:
            name, output, array, script = job_name(first.name), first.queue_file(".out"), [], first.queue_file(".sh")
        else:
            name, output = job_name(array_name(first)), array_output(first, self.index_token)
            array = self.array_options(first.index, tasks[-1].index, max_jobs_run)
            script = array_script(first)
        return [
            *self.config.command,
            *self.config.submit_options(self.options),
            *array,
            *self.naming_options(name, str(self.cwd / output)),
            str(self.cwd / script),
        ]

    def write_scripts(self, tasks: Sequence[Task]) -> None:
        for task in tasks:
            (self.cwd / task.log).parent.mkdir(parents=True, exist_ok=True)
            (self.cwd / task.queue_file(".sh")).parent.mkdir(parents=True, exist_ok=True)
            (self.cwd / task.queue_file(".done")).unlink(missing_ok=True)
            script = job_script(task, self.cwd, self.threads, task.queue_file(".done"), True)
            (self.cwd / task.queue_file(".sh")).write_text(script)
        if len(tasks) > 1:
            cases = [f"    {t.index}) exec bash {shlex.quote(str(self.cwd / t.queue_file('.sh')))} ;;" for t in tasks]
            text = "\n".join(
                [
                    "#!/bin/bash",
                    f'case "${{{self.index_variable}}}" in',
                    *cases,
                    "esac",
                    f'echo "no task ${{{self.index_variable}}} in this array" >&2',
                    "exit 1",
                ]
            )
            (self.cwd / array_script(tasks[0])).write_text(text + "\n")

    def submit(self, tasks: Sequence[Task], max_jobs_run: int) -> str:
        self.write_scripts(tasks)
        argv = self.submit_argv(tasks, max_jobs_run)
        proc = subprocess.run(argv, cwd=self.cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise JobRunnerError(f"submission failed ({proc.returncode}): {shlex.join(argv)}\n{proc.stderr.strip()}")
        return self.job_id(proc.stdout)

    def run(
        self, tasks: Sequence[Task], max_jobs_run: int = 0, poll_interval: Optional[float] = None
    ) -> Dict[Task, int]:
        interval = self.poll_interval if poll_interval is None else poll_interval
        job_id = self.submit(tasks, max_jobs_run)
        status, times_gone, last_check = {}, Counter(), time.monotonic()
        try:
            while True:
                for task in tasks:
                    code = self.read_marker(task) if task not in status else None
                    if code is not None:
                        status[task] = code
                if len(status) == len(tasks):
                    return status
                if time.monotonic() - last_check >= self.check_interval:
                    last_check = time.monotonic()
                    self.check(job_id, [t for t in tasks if t not in status], status, times_gone)
                    if len(status) == len(tasks):
                        return status
                time.sleep(interval)
        except BaseException:
            subprocess.run(self.cancel_argv(job_id), capture_output=True)
            raise

    def check(self, job_id: str, waiting: List[Task], status: Dict[Task, int], times_gone: Counter) -> None:
        """One status query for the whole job: a waiting task ended or unknown at two checks in a row has ended
        without its marker; then one accounting query for them all, which tells how they ended."""
        states = self.states(subprocess.run(self.status_argv(job_id), capture_output=True, text=True))
        self.update(job_id, states, waiting, status, times_gone)

    def update(
        self, job_id: str, states: Dict[str, str], waiting: List[Task], status: Dict[Task, int], times_gone: Counter
    ) -> None:
        """What one status query (``states``) says of the waiting tasks: see ``check``."""
        gone = []
        for task in waiting:
            state = task_state(states, task)
            times_gone[task] = times_gone[task] + 1 if state is None or state in self.ended_states else 0
            # Twice in a row: the task cannot merely have ended between our two looks (or its marker be late).
            if times_gone[task] >= 2 and self.read_marker(task) is None:
                gone.append((task, state))
        records = self.ask_accounting(job_id) if gone else None
        for task, state in gone:
            record = None if records is None else records.get(str(task.index), records.get(""))
            if record is not None:
                code, self.why[task] = record
                status[task] = VANISHED if code is None else code
            elif records is None or times_gone[task] >= 4:  # no accounting, or still no record of it
                code = self.read_marker(task)
                status[task] = VANISHED if code is None else code
                self.why[task] = describe_state(state) if code is None and state in self.ended_states else ""

    def ask_accounting(self, job_id: str) -> Optional[Dict[str, Record]]:
        """The accounting records of the job's tasks; None where the scheduler keeps none (or its command is
        missing)."""
        argv = self.accounting_argv(job_id)
        if not argv or shutil.which(argv[0]) is None:
            return None
        proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if proc.returncode != 0 and self.accounting_disabled(proc.stderr):
            return None
        return self.accounting(proc.stdout) if proc.returncode == 0 else {}

    def accounting_disabled(self, stderr: str) -> bool:
        """Whether the accounting query's error says the scheduler keeps no accounting at all."""
        return False

    def read_marker(self, task: Task) -> Optional[int]:
        try:
            return int((self.cwd / task.queue_file(".done")).read_text())
        except (FileNotFoundError, ValueError):
            return None


class SlurmBackend(SchedulerBackend):
    index_variable = "SLURM_ARRAY_TASK_ID"
    index_token = "%a"
    ended_states = frozenset(
        "BOOT_FAIL CANCELLED COMPLETED DEADLINE FAILED NODE_FAIL OUT_OF_MEMORY PREEMPTED REVOKED SPECIAL_EXIT "
        "TIMEOUT".split()
    )

    def naming_options(self, name: str, output: str) -> List[str]:
        return ["--job-name", name, "--output", output, "--parsable"]

    def array_options(self, first: int, last: int, max_jobs_run: int) -> List[str]:
        return [f"--array={first}-{last}" + (f"%{max_jobs_run}" if max_jobs_run > 0 else "")]

    def job_id(self, stdout: str) -> str:
        return stdout.strip().split(";")[0]  # --parsable prints "id" or "id;cluster"

    def status_argv(self, job_id: str) -> List[str]:
        # every task on a line of its own (--array), ended ones too while slurmctld remembers them (MinJobAge)
        return ["squeue", "--noheader", "--array", "--states=all", "--format", "%K %T", "--jobs", job_id]

    def states(self, proc: subprocess.CompletedProcess) -> Dict[str, str]:
        if proc.returncode != 0:
            return {}
        lines = [line.split() for line in proc.stdout.splitlines() if len(line.split()) == 2]
        return {(index if index.isdigit() else ""): state for index, state in lines}

    def cancel_argv(self, job_id: str) -> List[str]:
        return ["scancel", job_id]

    def accounting_argv(self, job_id: str) -> List[str]:
        # one line a task (--allocations: no job steps), "<id>_<index>|<state>|<exit status>:<signal>"
        return [
            "sacct",
            "--jobs",
            job_id,
            "--allocations",
            "--noheader",
            "--parsable2",
            "--format",
            "JobID,State,ExitCode",
        ]

    def accounting(self, stdout: str) -> Dict[str, Record]:
        records = {}
        for line in stdout.splitlines():
            fields = line.strip().split("|")
            if len(fields) < 3 or not fields[1]:
                continue
            job, state, exit_code = fields[:3]
            index = job.partition("_")[2]
            word = state.split()[0]  # "CANCELLED by 0": cancelled by uid 0
            if (index and not index.isdigit()) or word not in self.ended_states:
                continue  # "<id>_[3-5%1]": tasks not started yet; PENDING, RUNNING, ...: not ended
            code, _, signal = exit_code.partition(":")
            if word in ("COMPLETED", "FAILED") and code.isdigit() and signal in ("", "0"):
                records[index] = (int(code), "")
            else:
                records[index] = (None, describe_state(state))
        return records

    def accounting_disabled(self, stderr: str) -> bool:
        return "accounting storage is disabled" in stderr  # AccountingStorageType=accounting_storage/none


SGE_ERROR = "ERROR"  # the state SgeBackend.states gives a task in SGE's error state, before its reason


def sge_reason(failed: str, exit_status: int) -> str:
    """SGE's reason for a task that failed at the system level, from qacct's ``failed`` (``100 : assumedly after
    job``: killed by a signal, which is what qdel does) and ``exit_status`` (128 + the signal)."""
    if failed.split()[0] == "100" and exit_status > 128:
        signal = exit_status - 128
        how = "deleted (qdel) or killed by signal 9" if signal == 9 else f"killed by signal {signal}"
        return f"{how} (failed {failed})"
    return f"failed {failed}"


class SgeBackend(SchedulerBackend):
    index_variable = "SGE_TASK_ID"
    index_token = "$TASK_ID"

    def naming_options(self, name: str, output: str) -> List[str]:
        return ["-N", name, "-o", output, "-j", "y", "-S", "/bin/bash", "-terse"]

    def array_options(self, first: int, last: int, max_jobs_run: int) -> List[str]:
        return ["-t", f"{first}-{last}"] + (["-tc", str(max_jobs_run)] if max_jobs_run > 0 else [])

    def job_id(self, stdout: str) -> str:
        return stdout.strip().split(".")[0]  # -terse prints the id alone ("1001", or "1001.1-4:1" for an array)

    def status_argv(self, job_id: str) -> List[str]:
        return ["qstat", "-j", job_id]

    def states(self, proc: subprocess.CompletedProcess) -> Dict[str, str]:
        """As the base class's, and a task in SGE's error state (Eqw: it cannot start, e.g. its directory is not
        on the execution host) -> ``ERROR <reason>`` from qstat -j's ``error reason <task>: <text>`` lines (task 1
        of a job that is not an array is the job)."""
        states = super().states(proc)
        for index, reason in re.findall(r"^error reason\s+(\d+):\s*(.*)$", proc.stdout if states else "", re.M):
            states[index] = f"{SGE_ERROR} {reason.strip()}"
            if "job-array tasks:" not in proc.stdout:
                states[""] = states[index]
        return states

    def update(
        self, job_id: str, states: Dict[str, str], waiting: List[Task], status: Dict[Task, int], times_gone: Counter
    ) -> None:
        """As the base class's, but a task in the error state fails at once: it never runs, and SGE keeps it
        queued (Eqw) until it is deleted, which is done here, task by task (qdel <job> -t <task>)."""
        stuck = {t: state for t in waiting if (state := task_state(states, t) or "").startswith(SGE_ERROR)}
        for task, state in stuck.items():
            reason = state.removeprefix(SGE_ERROR).strip()
            status[task], self.why[task] = VANISHED, f"in error state (Eqw) and deleted: {reason}"
            subprocess.run([*self.cancel_argv(job_id), "-t", str(task.index)], capture_output=True)
        super().update(job_id, states, [t for t in waiting if t not in stuck], status, times_gone)

    def cancel_argv(self, job_id: str) -> List[str]:
        return ["qdel", job_id]

    def accounting_argv(self, job_id: str) -> List[str]:
        return ["qacct", "-j", job_id]  # a record of "key value" lines a task, after a line of "="

    def accounting(self, stdout: str) -> Dict[str, Record]:
        records = {}
        for block in re.split(r"^=+\s*$", stdout, flags=re.MULTILINE):
            fields = dict((line.split(None, 1) + [""])[:2] for line in block.splitlines() if line.strip())
            exit_status, failed = fields.get("exit_status", "").split(), " ".join(fields.get("failed", "0").split())
            if not exit_status or not exit_status[0].isdigit():
                continue
            index = fields.get("taskid", "").strip()  # "undefined" for a job that is not an array
            code = int(exit_status[0])
            if failed.split()[0] == "0":
                records[index if index.isdigit() else ""] = (code, "")
            else:  # the job failed at the system level (sge_status(5)); a later record (rerun) wins
                records[index if index.isdigit() else ""] = (code or None, sge_reason(failed, code))
        return records

    def accounting_disabled(self, stderr: str) -> bool:
        # "<SGE_ROOT>/<SGE_CELL>/common/accounting: No such file or directory": reporting_params accounting=false
        return "/accounting: " in stderr


class PbsBackend(SgeBackend):
    """PBS Professional and OpenPBS (Torque's arrays are ``qsub -t`` with ``PBS_ARRAYID``: not these)."""

    index_variable = "PBS_ARRAY_INDEX"
    index_token = "^array_index^"

    def naming_options(self, name: str, output: str) -> List[str]:
        return ["-N", name, "-o", output, "-j", "oe", "-S", "/bin/bash"]

    def array_options(self, first: int, last: int, max_jobs_run: int) -> List[str]:
        return ["-J", f"{first}-{last}"] + (["-W", f"max_run_subjobs={max_jobs_run}"] if max_jobs_run > 0 else [])

    def job_id(self, stdout: str) -> str:
        return stdout.strip()  # "123.server" ("123[].server" for an array), which qstat and qdel want whole

    def status_argv(self, job_id: str) -> List[str]:
        return ["qstat", job_id]

    def accounting_argv(self, job_id: str) -> List[str]:
        return []  # PBS keeps its accounting in the server's logs (tracejob), not read here


SCHEDULERS = {"slurm": SlurmBackend, "sge": SgeBackend, "pbs": PbsBackend}
