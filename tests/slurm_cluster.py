"""A real Slurm cluster for the tests (one node, or several on this host): munged, slurmctld and slurmd of
Debian's slurm-wlm and munge (installed by tools/setup_test.sh), run as root on 127.0.0.1 from a config written
into a temporary directory.

Nothing outside that directory is used or changed: munged gets its own key and socket there
(``--key-file``/``--socket``, and ``AuthInfo=socket=`` for Slurm), and the daemons their own ports, state,
spool, logs and pid files. Each daemon runs in the foreground as a child of the tests, which stop it by its pid.
"""

import os
import socket
from pathlib import Path
from typing import List

from daemons import Daemons, free_port
from daemons import missing_programs as missing

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scancel", "sinfo", "srun")


def missing_programs() -> List[str]:
    """The programs of slurm-wlm and munge that are not installed (munged and the daemons are in /usr/sbin)."""
    return missing(DAEMONS + CLIENTS)


class SlurmCluster(Daemons):
    """``start()`` brings up a node named after this host with 2 CPUs in partition ``cpu`` (the shipped
    conf/slurm.conf asks for ``-p cpu``), and waits until sinfo shows it idle; ``stop()`` cancels every job and
    stops the daemons, by pid. ``env``: the environment for the clients (SLURM_CONF).

    nodes > 1: that many nodes ``node1``, ``node2``, ... on this host, one slurmd each (``slurmd -N``, own port,
    spool and log), for jobs on several nodes (``srun`` starts a task on each)."""

    controller, cancel_all_argv = "slurmctld", ("scancel", "--user", "root")

    def __init__(self, root: Path, cpus: int = 2, nodes: int = 1):
        conf = Path(root) / "slurm.conf"
        super().__init__(
            root, {**os.environ, "SLURM_CONF": str(conf), "PATH": f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"}
        )
        self.cpus, self.nodes, self.conf = cpus, nodes, conf
        self.host = socket.gethostname().split(".")[0]
        self.node_names = [self.host] if nodes == 1 else [f"node{i}" for i in range(1, nodes + 1)]

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

    def jobs(self) -> List[str]:
        """Lines ``<id> <state>`` of every job the controller knows that has not ended."""
        return self.run("squeue", "--noheader", "--array", "--format", "%i %T").stdout.splitlines()
