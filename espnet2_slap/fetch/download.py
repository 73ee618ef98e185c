"""Fetching files over HTTP(S) with the standard library: progress, resume, verification, unpacking.

``fetch(url, dest, expected)`` writes ``dest`` through ``dest.part``: a partial file left by a dropped
connection or a killed run is resumed with a ``Range`` request (from the start when the server ignores it), a
complete file is verified against the size and MD5 / SHA-256 the publisher gives (``Expected``) before it is
renamed into place, and a file that fails is removed and fetched again (``retries`` tries in all). A file in
place that once passed is not read again: its size and time are recorded in ``<dest>.verified``.
``unpack(archive, into)`` extracts a zip or tar archive (members leaving the target are refused) through a
temporary directory, once (``into/.unpacked.<archive name>``). With the offline switch on (``SLAP_OFFLINE=1``
or ``HF_HUB_OFFLINE=1``) nothing is fetched: ``fetch`` only checks that the file is in place.
"""

import hashlib
import logging
import os
import shutil
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from typing import Optional

logger = logging.getLogger(__name__)
CHUNK = 1 << 20
OFFLINE_VARIABLES = ("SLAP_OFFLINE", "HF_HUB_OFFLINE")


class DownloadError(RuntimeError):
    """A file could not be fetched, verified or unpacked; the message says which and what to do."""


def offline_mode() -> bool:
    """True when SLAP_OFFLINE or HF_HUB_OFFLINE is set to 1/true/yes/on."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on") for v in OFFLINE_VARIABLES)


@dataclass(frozen=True)
class Expected:
    """What the publisher says a file is: its size in bytes and/or its MD5 or SHA-256 (hex)."""

    size: Optional[int] = None
    md5: Optional[str] = None
    sha256: Optional[str] = None

    def problem(self, path: Path) -> Optional[str]:
        """Why ``path`` is not the file described, or None when it is (or nothing is known of it)."""
        size = path.stat().st_size
        if self.size is not None and size != self.size:
            return f"{size} bytes, the publisher gives {self.size}"
        for name in ("md5", "sha256"):
            want = getattr(self, name)
            if want:
                digest = hashlib.new(name)
                with open(path, "rb") as f:
                    for block in iter(lambda: f.read(CHUNK), b""):
                        digest.update(block)
                if digest.hexdigest() != want.lower():
                    return f"{name} {digest.hexdigest()}, the publisher gives {want}"
        return None


class Progress:
    """A progress bar on a terminal (one line redrawn), else a log line every 10 %."""

    def __init__(self, name: str, total: Optional[int], done: int = 0):
        self.name, self.total, self.done, self.start = name, total, done, time.monotonic()
        self.tty, self.shown = sys.stderr.isatty(), -1

    def update(self, n: int) -> None:
        self.done += n
        mb = self.done / 1e6
        rate = (self.done / 1e6) / max(time.monotonic() - self.start, 1e-3)
        if not self.total:
            if self.tty:
                sys.stderr.write(f"\r{self.name}: {mb:.1f} MB ({rate:.1f} MB/s)")
            return
        percent = int(100 * self.done / self.total)
        if self.tty:
            bar = "#" * (percent // 4)
            sys.stderr.write(
                f"\r{self.name} [{bar:<25}] {percent:3d}% {mb:.1f}/{self.total / 1e6:.1f} MB {rate:.1f} MB/s"
            )
        elif percent // 10 > self.shown:
            self.shown = percent // 10
            logger.info(f"{self.name}: {percent}% of {self.total / 1e6:.1f} MB")

    def close(self) -> None:
        if self.tty:
            sys.stderr.write("\n")


def _read_into(url: str, part: Path, timeout: float) -> None:
    """Fetch ``url`` into ``part``, resuming from its size; raises OSError/HTTPException when cut short."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing left to send: the part is whole (verified by the caller)
            return
        raise
    with response:
        if have and response.status != 206:  # the server ignored the range: start again
            logger.info(f"{url}: the server does not resume (HTTP {response.status}); fetching from the start")
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        progress = Progress(part.name[: -len(".part")], total, have)
        received = 0
        with open(part, "ab" if have else "wb") as f:
            try:
                for block in iter(lambda: response.read(CHUNK), b""):
                    f.write(block)
                    received += len(block)
                    progress.update(len(block))
            finally:
                progress.close()
        if length is not None and received < int(length):
            raise ConnectionError(f"connection closed after {have + received} of {total} bytes")


def fetch(
    url: str,
    dest: Path,
    expected: Expected = Expected(),
    retries: int = 5,
    retry_wait: float = 5.0,
    timeout: float = 60.0,
    offline: Optional[bool] = None,
) -> Path:
    """``dest``, fetched from ``url`` unless it is in place and verified; see the module's description."""
    dest = Path(dest)
    marker = dest.with_name(dest.name + ".verified")
    if dest.is_file():
        stamp = f"{dest.stat().st_size} {dest.stat().st_mtime_ns}"
        if marker.is_file() and marker.read_text() == stamp:
            return dest
        problem = expected.problem(dest)
        if problem is None:
            marker.write_text(stamp)
            return dest
        if offline_mode() if offline is None else offline:
            raise DownloadError(f"{dest} is damaged ({problem}); offline, nothing is fetched: copy it again")
        logger.warning(f"{dest} is damaged ({problem}): fetching it again")
        dest.unlink()
    if offline_mode() if offline is None else offline:
        raise DownloadError(
            f"{dest} is missing and the offline switch is on (SLAP_OFFLINE / HF_HUB_OFFLINE): fetch {url} on a "
            f"machine with internet access and copy it to {dest}"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(1, retries + 1):
        try:
            logger.info(f"fetching {url} -> {dest}" + (f" (try {attempt} of {retries})" if attempt > 1 else ""))
            _read_into(url, part, timeout)
        except urllib.error.HTTPError as e:
            if e.code in (403, 404, 410):
                raise DownloadError(f"{url}: HTTP {e.code} {e.reason}: the file is not there (see the README)")
            error = f"HTTP {e.code} {e.reason}"
        except (OSError, HTTPException) as e:
            error = f"{type(e).__name__}: {e}"
        else:
            problem = expected.problem(part)
            if problem is None:
                part.rename(dest)
                marker.write_text(f"{dest.stat().st_size} {dest.stat().st_mtime_ns}")
                return dest
            error = f"the fetched file is damaged ({problem}); removed"
            part.unlink()
        logger.warning(f"{url}: {error}")
        if attempt < retries:
            time.sleep(retry_wait * (attempt - 1))  # the first retry at once (a dropped connection resumes)
    raise DownloadError(
        f"{url}: not fetched after {retries} tries (last: {error}); run again to resume ({part} is kept when partial)"
    )


def _inside(root: Path, name: str) -> bool:
    target = (root / name).resolve()
    return target == root or root in target.parents


def unpacking_dir(into: Path) -> Path:
    """Where ``unpack`` extracts into before moving into ``into``: left behind by an unpacking cut short."""
    into = Path(os.path.abspath(into))
    return into.parent / f".{into.name}.unpacking"


def unpack(archive: Path, into: Path, strip: str = "") -> Path:
    """Extract ``archive`` (zip, tar, tar.gz, ...) into ``into``, once; ``strip``: a top directory of the
    archive whose contents go straight into ``into`` (when the archive has it)."""
    into = Path(os.path.abspath(into))
    marker = into / f".unpacked.{archive.name}"
    if marker.is_file():
        return into
    tmp = unpacking_dir(into)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    root = tmp.resolve()
    logger.info(f"unpacking {archive} into {into}")
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                bad = [n for n in z.namelist() if not _inside(root, n)]
                if bad:
                    raise DownloadError(f"{archive}: members outside the target refused: {bad[:3]}")
                z.extractall(tmp)  # checks each member's CRC-32
        else:
            with tarfile.open(archive) as t:
                t.extractall(tmp, filter="data")  # refuses members leaving the target and links out of it
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DownloadError(f"{archive}: cannot unpack ({type(e).__name__}: {e}); remove it and fetch it again")
    top = tmp / strip if strip and (tmp / strip).is_dir() else tmp
    if top != tmp:
        others = sorted(p.name for p in tmp.iterdir() if p.name != strip)
        if others:
            logger.info(f"{archive}: left out what is beside {strip}/: {', '.join(others)}")
    if not into.exists():
        top.rename(into)  # at once: a kill leaves no half-filled target
    else:
        for item in sorted(top.iterdir()):
            target = into / item.name
            if target.is_dir() and item.is_dir():
                shutil.copytree(item, target, dirs_exist_ok=True)
            else:
                shutil.move(str(item), str(target))
    shutil.rmtree(tmp, ignore_errors=True)
    marker.write_text(f"{archive.stat().st_size}\n")
    return into
