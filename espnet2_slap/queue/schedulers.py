"""The cluster back-ends of the job runner: Slurm (sbatch), Sun/Son of Grid Engine and PBS Professional (qsub).

``JOB=1:N`` is one array job (``sbatch --array=1-N%M``, ``qsub -t 1-N -tc M``, ``qsub -J 1-N -W
max_run_subjobs=M``; M is ``--max-jobs-run``, which the scheduler enforces); one job is a plain submission. Each
task runs its own job script ``<logdir>/q/<name>.sh``, which also writes the task's exit status to a done-marker
``<logdir>/q/<name>.done``; the array's script (``<logdir>/q/x.JOB.sh`` for ``x.JOB.log``) picks the task's
script by its index.

The runner polls for the markers and asks the scheduler about the job, once per array, every ``check_interval``
seconds. A task without a marker that the scheduler reports ended (Slurm's CANCELLED, TIMEOUT, ...) or no longer
knows, at two checks in a row, has failed without an exit status (cancelled, killed for time or memory, node
failure), and its report gives the scheduler's word for it.
"""

import re
import shlex
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from espnet2_slap.queue.config import JobRunnerError, QueueConfig
from espnet2_slap.queue.job_runner import VANISHED, Backend, Task, job_script, log_stem


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
        """One status query for the whole job: a waiting task ended or unknown at two checks in a row failed."""
        states = self.states(subprocess.run(self.status_argv(job_id), capture_output=True, text=True))
        for task in waiting:
            state = states.get(str(task.index), states.get(""))
            times_gone[task] = times_gone[task] + 1 if state is None or state in self.ended_states else 0
            # Twice in a row: the task cannot merely have ended between our two looks (or its marker be late).
            if times_gone[task] >= 2 and self.read_marker(task) is None:
                status[task], self.why[task] = VANISHED, state if state in self.ended_states else ""

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

    def cancel_argv(self, job_id: str) -> List[str]:
        return ["qdel", job_id]


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


SCHEDULERS = {"slurm": SlurmBackend, "sge": SgeBackend, "pbs": PbsBackend}
