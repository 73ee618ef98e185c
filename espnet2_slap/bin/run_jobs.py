#!/usr/bin/env python3
"""Run parallel jobs the Kaldi way, here or on a cluster (the recipes' ``$train_cmd``, ``$cuda_cmd``).

    python -m espnet2_slap.bin.run_jobs [options] [JOB=1:N] log/x.JOB.log command [args...]

JOB (or any NAME=start:end; NAME=n is one job) is replaced by the job number in the log name and in the
command's words. Each job's log gets a header (command, start time), the command's stdout and stderr, and a
footer (exit code, elapsed time). Words are quoted, so they reach the command as they are; words that are
exactly a shell operator (| || && ; < > >> 2> 2>&1 ...) make pipelines and redirections:

    run_jobs JOB=1:4 log/dump.JOB.log python -m x --part JOB '|' gzip '>' out.JOB.gz

Options come before the job range, each as --name value (or --name=value; dashes and underscores alike).
--gpu, --mem, --num_threads, --time, --num_nodes and any other --name value are queue options: the cluster
back-ends turn them into submit options with --config (Kaldi/ESPnet format, see egs/TEMPLATE/slap1/conf/slurm.conf);
local and ssh ignore them, and refuse --num_nodes above 1. A job on several nodes is one submission whose
command starts the processes on every node (srun, mpirun), as ESPnet's launcher (espnet2.bin.launch) does it.
On slurm, sge and pbs, JOB=1:N is one array job (sbatch --array=1-N%M, qsub -t 1-N -tc M, qsub -J 1-N -W
max_run_subjobs=M, M = --max-jobs-run), and the scheduler is asked about it once per --check_interval; its tasks
report their exit status through done-marker files in <logdir>/q/, where their scripts and the scheduler's own
output also go. A task that ended without its marker is looked up in the scheduler's accounting (qacct -j on
sge, sacct on slurm where accounting is on) for its exit status and the scheduler's reason. Exits 1 when any job
fails, naming each failed task, its exit status, its log and, where the scheduler gave one, its reason
(cancelled, timeout, out of memory, deleted (qdel) or killed, or that it vanished from the queue).
"""

import argparse
import signal
import sys
from pathlib import Path
from typing import Dict, List, Tuple

from espnet2_slap.queue.config import JobRunnerError, QueueConfig
from espnet2_slap.queue.job_runner import Backend, LocalBackend, SshBackend, failure_report, make_tasks, read_hosts
from espnet2_slap.queue.schedulers import SCHEDULERS
from espnet2_slap.utils.cli import start_logging

QUEUE_OPTIONS = ("gpu", "mem", "num_threads", "time", "num_nodes")
BACKENDS = ("local", *SCHEDULERS, "ssh")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
        usage="%(prog)s [options] [JOB=1:N] <log file> <command> [args...]",
    )
    parser.add_argument("--backend", default="local", choices=BACKENDS)
    parser.add_argument("--config", type=Path, help="Queue config of slurm/sge/pbs (required for them)")
    parser.add_argument(
        "--max_jobs_run", "--max-jobs-run", type=int, default=0, help="Jobs running (or queued) at once, 0: all"
    )
    parser.add_argument(
        "--poll_interval",
        "--poll-interval",
        type=float,
        help="Seconds between looks at running jobs (default 0.1 here, 10 on a cluster)",
    )
    parser.add_argument(
        "--check_interval",
        "--check-interval",
        type=float,
        default=120.0,
        help="Seconds between asking the scheduler whether an unfinished job still exists",
    )
    parser.add_argument("--hosts", type=Path, help="ssh back-end: host names, one a line")
    for name in QUEUE_OPTIONS:
        parser.add_argument(f"--{name}", f"--{name.replace('_', '-')}", help="Queue option")
    return parser


def split_options(argv: List[str]) -> Tuple[List[str], List[str]]:
    """(leading options as --name=value words, the rest): every option takes a value, as in Kaldi."""
    options, i = [], 0
    while i < len(argv) and argv[i].startswith("-"):
        word = argv[i]
        if word in ("-h", "--help"):
            return ["--help"], []
        if not word.startswith("--"):
            raise JobRunnerError(f"unknown option {word} (options are --name value)")
        if "=" in word:
            options.append(word)
            i += 1
        elif i + 1 < len(argv):
            options.append(f"{word}={argv[i + 1]}")
            i += 2
        else:
            raise JobRunnerError(f"option {word} has no value")
    return options, argv[i:]


def make_backend(args: argparse.Namespace, queue_options: Dict[str, str]) -> Backend:
    cwd, threads = Path.cwd(), int(queue_options.get("num_threads", 1))
    if args.backend in ("local", "ssh") and int(queue_options.get("num_nodes", 1)) > 1:
        raise JobRunnerError(
            f"--num_nodes {queue_options['num_nodes']}: the {args.backend} back-end runs each job "
            "on one machine; jobs on several nodes need slurm, sge or pbs"
        )
    if args.backend == "local":
        return LocalBackend(cwd, threads)
    if args.backend == "ssh":
        if args.hosts is None:
            raise JobRunnerError("--backend ssh needs --hosts <file>")
        return SshBackend(cwd, read_hosts(args.hosts), threads)
    if args.config is None:
        raise JobRunnerError(f"--backend {args.backend} needs --config (e.g. conf/{args.backend}.conf)")
    config = QueueConfig.read(args.config)
    return SCHEDULERS[args.backend](cwd, config, queue_options, threads, args.check_interval)


def interrupt(signum, _frame):
    """SIGTERM (the recipe's guard stopping a run) as Ctrl-C: the running jobs are cancelled, on a cluster too."""
    raise KeyboardInterrupt


def main(cmd=None) -> int:
    start_logging("espnet2_slap.bin.run_jobs", cmd)
    signal.signal(signal.SIGTERM, interrupt)
    argv = sys.argv[1:] if cmd is None else list(cmd)
    parser = get_parser()
    try:
        option_words, rest = split_options(argv)
        args, others = parser.parse_known_args(option_words)
        queue_options = {n: getattr(args, n) for n in QUEUE_OPTIONS if getattr(args, n) is not None}
        for word in others:
            if not word.startswith("--") or "=" not in word:
                raise JobRunnerError(f"cannot parse option {word}")
            name, value = word[2:].split("=", 1)
            queue_options[name.replace("-", "_")] = value
        tasks = make_tasks(rest)
        backend = make_backend(args, queue_options)
        status = backend.run(tasks, args.max_jobs_run, args.poll_interval)
    except (JobRunnerError, OSError, ValueError) as e:
        print(f"run_jobs: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("run_jobs: interrupted, running jobs cancelled", file=sys.stderr)
        return 130
    failed, report = failure_report(status, backend.why)
    if failed:
        print(report, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
