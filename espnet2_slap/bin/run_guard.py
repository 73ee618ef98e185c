#!/usr/bin/env python3
"""What keeps a recipe run (egs/*/slap1/slap.sh) to itself: every process it starts stops with it, and one run at a
time writes into an experiment directory.

    python -m espnet2_slap.bin.run_guard supervise -- ./slap.sh [options]
    python -m espnet2_slap.bin.run_guard lock --fd 9 exp/slap_x     # fd 9 open on exp/slap_x/.lock, appending

supervise: runs the command and watches the process that started this one (run.sh). When that process goes away
(``kill -9`` of run.sh included), or when the command ends, every process the command started and that is still
there (jobs in their own sessions, orphans: on Linux they are reparented to this process) is sent SIGTERM, and
SIGKILL 10 s later. Ctrl-C reaches the command as before; this process waits for it. Exits with the command's
status (143 when its starter went away).

lock: takes an exclusive lock (flock) on the open file ``--fd`` (slap.sh opens <exp>/.lock on fd 9; its children
inherit it, so the lock lasts while any process of the run lives, and ends with the last one, however it ends)
and writes who holds it into <dir>/.lock. When another run holds it: exits 1 naming that run (pid, host, start
time, command) and the processes that still hold the lock.
"""

import argparse
import sys
from pathlib import Path

from espnet2_slap.queue.run_guard import supervise, take_lock
from espnet2_slap.utils.cli import start_logging


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", required=True)
    run = sub.add_parser("supervise", help="Run a command; stop all it started when it or its starter ends")
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- command [args...]")
    lock = sub.add_parser("lock", help="Lock a directory for this run (see above)")
    lock.add_argument("--fd", type=int, required=True, help="Open file descriptor of <dir>/.lock")
    lock.add_argument("directory", type=Path)
    return parser


def main(cmd=None) -> int:
    start_logging("espnet2_slap.bin.run_guard", cmd)
    args = get_parser().parse_args(cmd)
    if args.action == "lock":
        return take_lock(args.fd, args.directory)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        get_parser().error("supervise needs a command after --")
    return supervise(command)


if __name__ == "__main__":
    sys.exit(main())
