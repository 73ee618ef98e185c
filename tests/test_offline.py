"""No network at import: every entry point's --help runs with the network made unreachable, attempts nothing,
prints nothing about downloads and logs its command line in ESPnet's format; and the deferred module that keeps
ESPnet's g2p_en import (nltk downloads) away.

The network is cut inside each process by an audit hook (sitecustomize.py on PYTHONPATH) that records and refuses
every name lookup and every internet socket connection, so an attempt is caught wherever it comes from (socket,
urllib, requests, nltk), without privileges.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from espnet2_slap.offline import DeferredModule, defer_network_imports

PACKAGE = REPO / "espnet2_slap"
ENTRY_POINTS = sorted(
    ".".join(path.relative_to(REPO).with_suffix("").parts)
    for path in PACKAGE.rglob("*.py")
    if 'if __name__ == "__main__":' in path.read_text()
)

NO_NETWORK = """
import os, socket, sys

def _refuse(event, args):
    internet = event != "socket.connect" or args[0].family in (socket.AF_INET, socket.AF_INET6)
    if event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex", "socket.connect",
                 "socket.sendto", "urllib.Request") and internet:
        with open(os.environ["NETWORK_ATTEMPTS"], "a") as log:
            log.write(f"{sys.argv} {event} {args[:2]!r}\\n")
        raise OSError(101, "Network is unreachable (tests/test_offline.py)")

sys.addaudithook(_refuse)
"""
DOWNLOAD_TALK = re.compile(r"nltk_data|error loading|download(ing|ed)?\b|connection|urlopen|resolve", re.IGNORECASE)


@pytest.fixture(scope="module")
def offline_env(tmp_path_factory):
    site = tmp_path_factory.mktemp("no_network")
    (site / "sitecustomize.py").write_text(NO_NETWORK)
    attempts = site / "attempts.log"
    env = {**os.environ, "PYTHONPATH": str(site), "NETWORK_ATTEMPTS": str(attempts)}
    for variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "NLTK_DATA"):
        env.pop(variable, None)  # nothing of ours may rely on them
    return env, attempts


def test_the_network_cut_catches_an_attempt(offline_env):
    """The check itself: a lookup in such a process is refused and recorded."""
    env, attempts = offline_env
    code = "import socket\ntry:\n    socket.getaddrinfo('example.org', 80)\nexcept OSError as e:\n    print(e)"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert "Network is unreachable" in proc.stdout
    assert "socket.getaddrinfo" in attempts.read_text()
    attempts.unlink()


def test_entry_points_help_attempts_no_connection_and_mentions_no_download(offline_env, tmp_path):
    env, attempts = offline_env
    assert len(ENTRY_POINTS) >= 15 and "espnet2_slap.bin.slap_train" in ENTRY_POINTS
    # all at once: each is mostly import time
    procs = {
        module: subprocess.Popen(
            [sys.executable, "-m", module, "--help"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for module in ENTRY_POINTS
    }
    failures = []
    for module, proc in procs.items():
        out, err = proc.communicate(timeout=600)
        if proc.returncode != 0:
            failures.append(f"{module} --help exited {proc.returncode}: {err[-2000:]}")
        # ESPnet's log format, and the command line first (slap_train: ESPnet's AbsTask.main prints it bare)
        script = module.replace(".", "/") + ".py --help"
        prefix = "" if module.endswith(".slap_train") else r"\d{4}-\d\d-\d\d [\d:,]+ \(cli:\d+\) INFO: "
        if not re.search(rf"^{prefix}\S*python\S* \S*{script}$", err, re.MULTILINE):
            failures.append(f"{module} --help did not log its command line in ESPnet's format first:\n{err[:1000]}")
        # stdout is the help text (which may name downloads of its own); stderr must hold nothing about fetching
        if DOWNLOAD_TALK.search(err) or "nltk_data" in out:
            failures.append(f"{module} --help printed:\n{out[-1000:]}\n{err[-2000:]}")
    assert not failures, "\n".join(failures)
    assert not attempts.exists(), f"network attempts:\n{attempts.read_text()}"


def make_package(root: Path, name: str) -> Path:
    """A package whose import leaves a trace file: it stands for g2p_en and its downloads."""
    package = root / name
    package.mkdir()
    trace = root / f"{name}.imported"
    (package / "__init__.py").write_text(f"open({str(trace)!r}, 'w').close()\nVALUE = 42\n")
    return trace


def test_a_deferred_module_runs_only_when_one_of_its_names_is_used(tmp_path, monkeypatch):
    import inspect

    trace = make_package(tmp_path, "fake_g2p_package")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr("espnet2_slap.offline.DEFERRED_MODULES", ("fake_g2p_package",))
    monkeypatch.delitem(sys.modules, "fake_g2p_package", raising=False)
    defer_network_imports()
    import fake_g2p_package  # as ESPnet's phoneme_tokenizer does with g2p_en

    assert isinstance(fake_g2p_package, DeferredModule)
    inspect.getmodule(test_a_deferred_module_runs_only_when_one_of_its_names_is_used)  # what torch's import does
    assert not trace.exists() and fake_g2p_package.__file__.endswith("__init__.py")
    assert fake_g2p_package.VALUE == 42 and trace.exists()
    assert sys.modules["fake_g2p_package"] is not fake_g2p_package  # the real module took its place
    monkeypatch.delitem(sys.modules, "fake_g2p_package")
