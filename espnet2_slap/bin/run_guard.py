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
import ctypes
import fcntl
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Set

from espnet2_slap.utils.cli import start_logging

PR_SET_CHILD_SUBREAPER = 36
POLL_SECONDS = 0.5
GRACE_SECONDS = 10.0


def become_subreaper() -> None:
    """Orphaned descendants are reparented to this process instead of init (Linux >= 3.4; elsewhere nothing)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def parents() -> Dict[int, int]:
    """{pid: parent pid} of every process (from /proc; empty where there is none)."""
    table = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        table[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return table


def descendants(pid: int) -> Set[int]:
    """The processes below ``pid`` in the process tree."""
    children: Dict[int, List[int]] = {}
    for child, parent in parents().items():
        children.setdefault(parent, []).append(child)
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def reap() -> None:
    """Collect the exit status of ended children (orphans reparented here included)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def stop_all(why: str) -> None:
    """SIGTERM to every descendant, again to those that appear meanwhile, SIGKILL to those left after the grace."""
    deadline = time.monotonic() + GRACE_SECONDS
    told = False
    while True:
        reap()
        left = descendants(os.getpid())
        if not left:
            return
        if not told:
            logging.warning(f"{why}: stopping the {len(left)} process(es) of this run still there")
            told = True
        sig = signal.SIGTERM if time.monotonic() < deadline else signal.SIGKILL
        for pid in left:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        time.sleep(0.2)


def supervise(command: List[str]) -> int:
    become_subreaper()
    starter = os.getppid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the command (same process group)
    stop = {"why": None}

    def on_signal(signum, _frame):
        stop["why"] = f"got {signal.Signals(signum).name}"

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    child = subprocess.Popen(command, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    while child.poll() is None and stop["why"] is None:
        if os.getppid() != starter:
            stop["why"] = f"the process that started this run (pid {starter}) is gone"
            break
        time.sleep(POLL_SECONDS)
    if stop["why"] is not None:
        stop_all(stop["why"])
        return 143
    stop_all(f"{' '.join(command[:1])} ended (status {child.returncode}) and left processes behind")
    return child.returncode


def lock_holders(lock_file: Path) -> List[str]:
    """'pid (command)' of the processes that have ``lock_file`` open (Linux /proc; empty elsewhere)."""
    holders = []
    target = str(lock_file.resolve())
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if any(os.readlink(fd) == target for fd in (entry / "fd").iterdir()):
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                holders.append(f"{entry.name} ({command[:120]})")
        except OSError:
            continue
    return holders


def take_lock(fd: int, directory: Path) -> int:
    lock_file = directory / ".lock"
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = lock_file.read_text(encoding="utf-8", errors="replace").strip() or "(no record)"
        mine = os.getppid()
        holders = [h for h in lock_holders(lock_file) if not h.startswith((f"{os.getpid()} ", f"{mine} "))]
        logging.error(
            f"{directory} is in use by another run: {holder}"
            + (f"; processes that hold its lock now: {', '.join(holders)}" if holders else "")
            + ". Wait for that run to end, or stop it (kill its run.sh: everything it started stops with it), "
            "or give this run another --tag (another experiment directory)."
        )
        return 1
    os.ftruncate(fd, 0)
    starter = os.getppid()
    try:
        command = Path(f"/proc/{starter}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        command = "?"
    record = f"pid {starter} on {socket.gethostname()} since {time.strftime('%Y-%m-%dT%H:%M:%S')}: {command.strip()}"
    os.write(fd, (record + "\n").encode("utf-8"))
    return 0


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
