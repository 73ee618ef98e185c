"""MB/s of ``espnet2_slap.fetch.download.fetch`` over loopback, and what the checks and the resume cost.

A file of --mb MB of random bytes is served from 127.0.0.1 by the standard library's threaded HTTP server (one
that answers Range requests, as the publishers' servers do) and fetched: plain, with its SHA-256 and MD5
checked, and resumed from a half-written ``.part`` (the first half not fetched again). Loopback has no network
in the way: the figures are the fetcher's own ceiling (reading, writing, hashing on this machine), not what a
publisher's server gives.

Not a test: figures depend on the machine and its load. Example:

    tools/venv/bin/python bench/fetch.py --mb 200
"""

import argparse
import hashlib
import os
import re
import tempfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from espnet2_slap.fetch.download import Expected, fetch


class RangeHandler(SimpleHTTPRequestHandler):
    """Serves files from its directory; ``Range: bytes=N-`` is answered with 206 and the rest of the file."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        path = Path(self.translate_path(self.path))
        if not match or not path.is_file():
            return super().do_GET()
        start, size = int(match[1]), path.stat().st_size
        self.send_response(206)
        self.send_header("Content-Length", str(size - start))
        self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        self.end_headers()
        with open(path, "rb") as f:
            f.seek(start)
            while block := f.read(1 << 20):
                self.wfile.write(block)


def timed(what: str, mb: float, run) -> None:
    """Run ``run()``; print its seconds and the MB/s of ``mb`` MB fetched (none when 0)."""
    start = time.perf_counter()
    run()
    seconds = time.perf_counter() - start
    print(f"{what:<40} {seconds:7.3f} s" + (f"  {mb / seconds:8.1f} MB/s" if mb else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=200, help="Size of the served file in MB")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        served, out = Path(tmp) / "served", Path(tmp) / "out"
        served.mkdir()
        out.mkdir()
        data = os.urandom(args.mb << 20)
        (served / "blob.bin").write_bytes(data)
        expected = Expected(size=len(data), sha256=hashlib.sha256(data).hexdigest(), md5=hashlib.md5(data).hexdigest())
        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(RangeHandler, directory=str(served)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/blob.bin"
        mb = len(data) / 1e6
        print(f"{mb:.0f} MB over loopback ({os.cpu_count()} CPUs)")
        timed("fetch, no checks", mb, lambda: fetch(url, out / "a.bin"))
        timed("fetch, size + SHA-256 + MD5 checked", mb, lambda: fetch(url, out / "b.bin", expected))
        part = out / "c.bin.part"
        part.write_bytes(data[: len(data) // 2])
        timed("resume of a half .part (MB/s: the half)", mb / 2, lambda: fetch(url, out / "c.bin", expected))
        timed("in place, checked before (not read)", 0, lambda: fetch(url, out / "b.bin", expected))
        assert (out / "c.bin").read_bytes() == data
        server.shutdown()


if __name__ == "__main__":
    main()
