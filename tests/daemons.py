"""Daemons of a scheduler run for the tests (tests/slurm_cluster.py, tests/sge_cluster.py): each in the foreground
as a child of the tests, with its output in ``<root>/log``, stopped by its pid."""

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Sequence

SYSTEM_DIRS = ("/usr/sbin", "/sbin")  # where Debian puts daemons, outside a user's PATH


def missing_programs(names: Sequence[str], dirs: Sequence[str] = SYSTEM_DIRS) -> List[str]:
    """The programs among names found neither on PATH nor in dirs."""
    path = os.pathsep.join([os.environ.get("PATH", ""), *dirs])
    return [name for name in names if shutil.which(name, path=path) is None]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemons:
    """The daemons started with ``launch`` (by name), the clients' environment ``env``, and the root directory."""

    stop_timeout = 15.0  # seconds a daemon is given to stop on SIGTERM before SIGKILL

    def __init__(self, root: Path, env: Dict[str, str]):
        self.root, self.env = Path(root), env
        self.processes: Dict[str, subprocess.Popen] = {}

    def launch(self, name: str, argv: List[str], env: Dict[str, str] = None) -> None:
        """Start argv in the background, its output in ``<root>/log/<name>.stderr``."""
        (self.root / "log").mkdir(parents=True, exist_ok=True)
        log = (self.root / "log" / f"{name.replace(' ', '.')}.stderr").open("w")
        self.processes[name] = subprocess.Popen(
            argv, env=env or self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def run(self, *argv: str, env: Dict[str, str] = None, **kwargs) -> subprocess.CompletedProcess:
        """A client's run in env (default: ``self.env``), its output captured."""
        return subprocess.run(argv, env=env or self.env, capture_output=True, text=True, timeout=30, **kwargs)

    def wait_for(self, condition, timeout: float, what: str) -> None:
        """Poll condition() until true; fail with the logs when a daemon exits or the time is up."""
        deadline = time.monotonic() + timeout
        while not condition():
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode} while waiting for {what}:\n{self.logs()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out after {timeout} s waiting for {what}:\n{self.logs()}")
            time.sleep(0.1)

    controller = ""  # the daemon that knows the jobs
    cancel_all_argv: Sequence[str] = ()  # the client's command that cancels every job

    def jobs(self) -> List[str]:
        """The controller's lines of the jobs it knows that have not ended."""
        raise NotImplementedError

    def cancel_all(self, timeout: float = 30.0) -> None:
        """Cancel every job and wait until none is left (their processes gone with them)."""
        if self.processes.get(self.controller) is None or self.processes[self.controller].poll() is not None:
            return
        self.run(*self.cancel_all_argv)
        deadline = time.monotonic() + timeout
        while self.jobs() and time.monotonic() < deadline:
            time.sleep(0.2)

    def stop(self) -> None:
        """Cancel the jobs, then stop the daemons by their pids."""
        try:
            self.cancel_all()
        finally:
            self.stop_daemons()

    def stop_daemons(self) -> None:
        """Stop the daemons by their pids, the last started first (SIGTERM, then SIGKILL)."""
        for name in reversed(list(self.processes)):
            proc = self.processes[name]
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=self.stop_timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.processes.clear()

    def log_files(self) -> List[Path]:
        return sorted((self.root / "log").glob("*"))

    def logs(self) -> str:
        """The tails of the daemons' logs, for error messages."""
        texts = []
        for log in self.log_files():
            if log.is_file():
                texts.append(f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:]))
        return "\n".join(texts)
