"""What keeps a recipe run (egs/*/slap1/slap.sh) to itself, the logic behind ``espnet2_slap.bin.run_guard``
(whose ``--help`` says how slap.sh uses it).

- ``supervise(command)``: runs the command as a child subreaper (``prctl(PR_SET_CHILD_SUBREAPER)``: orphans of
  the run are reparented here, not to init) and, when the command ends or the process that started this one goes
  away, stops every process still below this one (found by a scan of ``/proc``): SIGTERM, SIGKILL after
  ``GRACE_SECONDS``.
- ``take_lock(fd, directory)``: an exclusive ``flock`` on ``<directory>/.lock``, open as ``fd`` and inherited by
  every process of the run, with the holder's record in it; when another run holds it, who (the record and, from
  ``/proc``, the processes that have the file open).

Linux: elsewhere there is no subreaper and no ``/proc``, and the guard does less (nothing below the command is
found). It guards the recipes' jobs, hence the queue layer, beside the job runner.
"""

import ctypes
import fcntl
import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Set

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
    """Runs ``command`` until it ends or the process that started this one goes away (or this one gets SIGTERM
    or SIGHUP), then stops every process still there below this one; the command's status, or 143."""
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
    """Locks the open file ``fd`` (``<directory>/.lock``) for the run that started this process and records that
    run in it: 0; 1, after logging who holds it, when another run does."""
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
