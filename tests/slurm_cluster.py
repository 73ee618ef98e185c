"""A real Slurm cluster for the tests (one node, or several on this host): munged, slurmctld and slurmd of
Debian's slurm-wlm and munge (installed by tools/setup_test.sh), run as root on 127.0.0.1 from a config written
into a temporary directory.

Nothing outside that directory is used or changed: munged gets its own key and socket there
(``--key-file``/``--socket``, and ``AuthInfo=socket=`` for Slurm), and the daemons their own ports, state,
spool, logs and pid files. Each daemon runs in the foreground as a child of the tests, which stop it by its pid.
"""

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Dict, List

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scancel", "sinfo", "srun")


def missing_programs() -> List[str]:
    """The programs of slurm-wlm and munge that are not installed (munged and the daemons are in /usr/sbin)."""
    path = f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"
    return [name for name in DAEMONS + CLIENTS if shutil.which(name, path=path) is None]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SlurmCluster:
    """``start()`` brings up a node named after this host with 2 CPUs in partition ``cpu`` (the shipped
    conf/slurm.conf asks for ``-p cpu``), and waits until sinfo shows it idle; ``stop()`` cancels every job and
    stops the daemons, by pid. ``env``: the environment for the clients (SLURM_CONF).

    nodes > 1: that many nodes ``node1``, ``node2``, ... on this host, one slurmd each (``slurmd -N``, own port,
    spool and log), for jobs on several nodes (``srun`` starts a task on each)."""

    def __init__(self, root: Path, cpus: int = 2, nodes: int = 1):
        self.root, self.cpus, self.nodes = Path(root), cpus, nodes
        self.host = socket.gethostname().split(".")[0]
        self.node_names = [self.host] if nodes == 1 else [f"node{i}" for i in range(1, nodes + 1)]
        self.conf = self.root / "slurm.conf"
        self.env: Dict[str, str] = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.env["PATH"] = f"{self.env.get('PATH', '')}:/usr/sbin:/sbin"
        self.processes: Dict[str, subprocess.Popen] = {}

    def node_lines(self) -> List[str]:
        if self.nodes == 1:
            return [f"SlurmdPort={free_port()}", f"NodeName={self.host} NodeAddr=127.0.0.1 CPUs={self.cpus}"]
        return [
            f"NodeName={name} NodeHostname={self.host} NodeAddr=127.0.0.1 Port={free_port()} CPUs={self.cpus}"
            for name in self.node_names
        ]

    def write_config(self) -> None:
        host = self.host
        for sub in ("munge", "state", "spool", "log"):
            (self.root / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(128))
        key.chmod(0o400)
        r = self.root
        self.conf.write_text(
            "\n".join(
                [
                    "ClusterName=slaptest",
                    f"SlurmctldHost={host}(127.0.0.1)",
                    f"SlurmctldPort={free_port()}",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    "AuthType=auth/munge",
                    "CredType=cred/munge",
                    f"AuthInfo=socket={r}/munge/munge.socket",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_CPU",
                    "MpiDefault=none",
                    "ReturnToService=2",
                    "JobAcctGatherType=jobacct_gather/none",
                    "AccountingStorageType=accounting_storage/none",
                    "SchedulerParameters=sched_interval=1",
                    "KillWait=2",
                    f"StateSaveLocation={r}/state",
                    f"SlurmdSpoolDir={r}/spool/%n",
                    f"SlurmctldPidFile={r}/slurmctld.pid",
                    f"SlurmdPidFile={r}/slurmd.%n.pid",
                    f"SlurmctldLogFile={r}/log/slurmctld.log",
                    f"SlurmdLogFile={r}/log/slurmd.%n.log",
                    *self.node_lines(),
                    f"PartitionName=cpu Nodes={','.join(self.node_names)} Default=YES MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )

    def launch(self, name: str, argv: List[str]) -> None:
        log = (self.root / "log" / f"{name.replace(' ', '.')}.stderr").open("w")
        self.processes[name] = subprocess.Popen(
            argv, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def start(self, timeout: float = 60.0) -> "SlurmCluster":
        self.write_config()
        m = self.root / "munge"
        self.launch(
            "munged",
            ["munged", "--foreground", "--force", f"--key-file={m}/munge.key", f"--socket={m}/munge.socket",
             f"--log-file={self.root}/log/munged.log", f"--pid-file={m}/munged.pid", f"--seed-file={m}/munged.seed"],
        )  # fmt: skip
        self.wait_for(lambda: (m / "munge.socket").exists(), timeout, "munged to create its socket")
        self.launch("slurmctld", ["slurmctld", "-D", "-f", str(self.conf)])
        for name in self.node_names:
            self.launch(f"slurmd {name}", ["slurmd", "-D", "-f", str(self.conf), "-N", name])
        idle = ["idle"] * len(self.node_names)
        self.wait_for(lambda: self.run("sinfo", "--noheader", "--Node", "--format", "%T").stdout.split() == idle,
                      timeout, "sinfo to show the nodes idle")  # fmt: skip
        return self

    def run(self, *argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=30)

    def wait_for(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode} while waiting for {what}:\n{self.logs()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out after {timeout} s waiting for {what}:\n{self.logs()}")
            time.sleep(0.1)

    def jobs(self) -> List[str]:
        """Lines ``<id> <state>`` of every job the controller knows that has not ended."""
        return self.run("squeue", "--noheader", "--array", "--format", "%i %T").stdout.splitlines()

    def cancel_all(self, timeout: float = 30.0) -> None:
        """Cancel every job and wait until none is left running (their processes gone with them)."""
        if self.processes.get("slurmctld") is None or self.processes["slurmctld"].poll() is not None:
            return
        self.run("scancel", "--user", "root")
        deadline = time.monotonic() + timeout
        while self.jobs() and time.monotonic() < deadline:
            time.sleep(0.2)

    def stop(self) -> None:
        """Cancel the jobs, then stop slurmd, slurmctld and munged by their pids (SIGTERM, then SIGKILL)."""
        try:
            self.cancel_all()
        finally:
            for name in reversed(list(self.processes)):
                proc = self.processes[name]
                if proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(timeout=15)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
            self.processes.clear()

    def logs(self) -> str:
        """The tails of the daemons' logs, for error messages."""
        texts = []
        for log in sorted((self.root / "log").glob("*")):
            texts.append(f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:]))
        return "\n".join(texts)
