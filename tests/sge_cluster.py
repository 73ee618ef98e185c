"""A real Grid Engine for the tests: sge_qmaster and sge_execd of Debian's gridengine packages (Son of Grid
Engine 8.1.9, installed by tools/setup_test.sh), run as root for this host from a cell in a temporary directory.

Nothing outside that directory is used or changed: it is the cell's own ``SGE_ROOT`` (links to the packaged
binaries, ``util``, and a cell ``slaptest`` with classic spooling: configuration, spool, accounting and the
daemons' messages all there), with its own qmaster and execd ports. The cell is configured as ``inst_sge``
would, with ``spooldefaults`` before the qmaster starts and ``qconf`` after: root may run jobs (``min_uid 0``),
the scheduler runs every second, accounting is flushed every second (``qacct`` sees a job a second after it
ended), one queue ``all.q`` with 2 slots on this host and the parallel environments ``smp`` and ``mpi`` that the
shipped conf/sge.conf asks for. Each daemon runs in the foreground (``SGE_ND``) as a child of the tests, which
stop it by its pid.

Host names: Grid Engine identifies a host by the name its address resolves to, and the qmaster sees the execd
and the clients come from 127.0.0.1, which /etc/hosts may name ``localhost`` while ``hostname`` says ``vm``.
The cell's ``host_aliases`` makes every name of this host's address an alias of the host name, and
``act_qmaster`` names the host, so /etc/hosts is left as it is.
"""

import os
import socket
from pathlib import Path
from typing import List

from daemons import Daemons, free_port
from daemons import missing_programs as missing

PACKAGED_ROOT = Path("/var/lib/gridengine")  # Debian's SGE_ROOT: bin/, lib/, utilbin/ link to /usr/lib/gridengine
BINARIES = Path("/usr/lib/gridengine")
DEFAULTS = Path("/usr/share/gridengine")
DAEMONS = ("sge_qmaster", "sge_execd")
CLIENTS = ("qsub", "qstat", "qdel", "qacct", "qconf")
CELL = "slaptest"


def missing_programs() -> List[str]:
    """The programs of gridengine-master, -exec and -client that are not installed."""
    return missing(DAEMONS + CLIENTS, [str(BINARIES)])


def host_names(host: str) -> List[str]:
    """The names that this host's address resolves back to (``localhost`` for 127.0.0.1), host left out."""
    try:
        name, aliases, _ = socket.gethostbyaddr(socket.gethostbyname(host))
    except OSError:
        return []
    return [n for n in dict.fromkeys([name, *aliases]) if n != host]


class SgeCluster(Daemons):
    """``start()`` brings up the cell with the execd of this host, and waits until its queue instance takes jobs;
    ``stop()`` deletes every job (qdel) and stops the daemons, by pid. ``env``: the environment for the clients
    (SGE_ROOT, SGE_CELL and the ports); ``host``: this host's name, the cell's only host."""

    controller, cancel_all_argv = "sge_qmaster", ("qdel", "-u", "*")
    stop_timeout = 1.0  # the qmaster takes 8 s to stop on SIGTERM (its timed threads): a throwaway cell is killed

    def __init__(self, root: Path, slots: int = 2):
        root = Path(root)
        env = {
            **os.environ,
            "SGE_ROOT": str(root),
            "SGE_CELL": CELL,
            "PATH": f"{os.environ.get('PATH', '')}:{BINARIES}",
        }
        super().__init__(root, env)
        self.slots = slots
        self.host = socket.gethostname().split(".")[0]
        self.cell = root / CELL
        self.spool = self.cell / "spool"

    def write_cell(self) -> None:
        """SGE_ROOT's links, the cell's bootstrap, act_qmaster and host_aliases, and the spooled defaults."""
        self.env["SGE_QMASTER_PORT"], self.env["SGE_EXECD_PORT"] = str(free_port()), str(free_port())
        for sub in ("bin", "lib", "utilbin"):
            (self.root / sub).symlink_to(PACKAGED_ROOT / sub)
        (self.root / "util").symlink_to(DEFAULTS / "util")
        for sub in ("common", "spool/qmaster", "spool/execd", "tmp", "conf"):
            (self.cell / sub).mkdir(parents=True, exist_ok=True)
        common, qmaster = self.cell / "common", self.spool / "qmaster"
        settings = {
            "admin_user": "none",  # the daemons stay root
            "default_domain": "none",
            "ignore_fqdn": "true",
            "spooling_method": "classic",
            "spooling_lib": "libspoolc",
            "spooling_params": f"{common};{qmaster}",
            "binary_path": str(BINARIES),
            "qmaster_spool_dir": str(qmaster),
            "security_mode": "none",
        }
        (common / "bootstrap").write_text("".join(f"{k} {v}\n" for k, v in settings.items()))
        (common / "act_qmaster").write_text(self.host + "\n")
        (common / "host_aliases").write_text(" ".join([self.host, *host_names(self.host)]) + "\n")
        changes = {
            "execd_spool_dir": str(self.spool / "execd"),
            "mailer": "/bin/true",
            "min_uid": "0",  # the tests run as root: their jobs too
            "min_gid": "0",
            "load_report_time": "00:00:02",
            "reporting_params": "accounting=true reporting=false flush_time=00:00:01 joblog=false sharelog=00:00:00",
        }
        lines = (DEFAULTS / "default-configuration").read_text().splitlines()
        conf = [f"{w[0]} {changes[w[0]]}" if (w := line.split()) and w[0] in changes else line for line in lines]
        global_conf = self.cell / "conf" / "global"
        global_conf.write_text("\n".join(conf) + "\n")
        for what in (["configuration", global_conf], ["complexes", DEFAULTS / "util/resources/centry"],
                     ["usersets", DEFAULTS / "util/resources/usersets"], ["managers", "root"]):  # fmt: skip
            self.checked(str(BINARIES / "spooldefaults"), *map(str, what))

    def checked(self, *argv: str, **kwargs) -> str:
        """Run a command of the cell; its output, or RuntimeError with it and the logs."""
        proc = self.run(*argv, **kwargs)
        if proc.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv)} failed ({proc.returncode}): {proc.stdout}{proc.stderr}\n{self.logs()}"
            )
        return proc.stdout

    def edit(self, argv: List[str], changes: dict) -> None:
        """Run ``qconf`` argv (``-aq all.q``, ``-msconf``) with an editor that sets the given attributes."""
        editor = self.cell / "conf" / "editor"
        expressions = " ".join(f"-e 's|^{k} .*|{k} {v}|'" for k, v in changes.items())
        editor.write_text(f'#!/bin/sh\nexec sed -i {expressions} "$1"\n')
        editor.chmod(0o755)
        self.checked("qconf", *argv, env={**self.env, "EDITOR": str(editor)})

    def queue_states(self) -> List[str]:
        """The lines of ``qstat -f`` that describe all.q on this host (``all.q@vm BIP 0/0/2 0.5 lx-amd64 [states]``)."""
        return [
            line for line in self.run("qstat", "-f", "-q", "all.q").stdout.splitlines() if line.startswith("all.q@")
        ]

    def start(self, timeout: float = 60.0) -> "SgeCluster":
        self.write_cell()
        daemon_env = {**self.env, "SGE_ND": "1"}  # no daemonizing: the process we start is the daemon
        self.launch("sge_qmaster", [str(BINARIES / "sge_qmaster")], env=daemon_env)
        self.wait_for(lambda: self.run("qconf", "-sh").returncode == 0, timeout, "sge_qmaster to answer")
        self.checked("qconf", "-as", self.host)
        self.edit(["-msconf"], {"schedule_interval": "0:0:1", "flush_submit_sec": "1", "flush_finish_sec": "1"})
        self.checked("qconf", "-at", "scheduler")  # not started without a scheduler configuration, which was none
        self.launch("sge_execd", [str(BINARIES / "sge_execd")], env=daemon_env)
        self.wait_for(lambda: self.host in self.run("qconf", "-sel").stdout.split(), timeout, "sge_execd to register")
        for pe in ("smp", "mpi"):  # smp: slots on one host ($pe_slots); mpi: $fill_up, here both on this host
            self.checked("qconf", "-Ap", str(DEFAULTS / "util/resources/pe" / pe))
        queue = {"hostlist": self.host, "slots": self.slots, "pe_list": "smp mpi", "load_thresholds": "NONE",
                 "tmpdir": self.cell / "tmp", "shell": "/bin/bash"}  # fmt: skip
        self.edit(["-aq", "all.q"], queue)
        # a queue instance takes jobs once the execd has reported its load: no state (a: alarm, u: unknown)
        self.wait_for(lambda: [len(line.split()) for line in self.queue_states()] == [5], timeout, "all.q to be up")
        return self

    def jobs(self) -> List[str]:
        """``qstat`` lines of every job the qmaster knows (pending, running, being deleted)."""
        return self.run("qstat", "-u", "*").stdout.splitlines()[2:]

    def log_files(self) -> List[Path]:
        return super().log_files() + sorted(self.spool.glob("**/messages"))
