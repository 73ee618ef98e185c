"""A threaded HTTP server on 127.0.0.1 for the fetch tests: files from a dict, Range requests (206), a connection
dropped midway once, a corrupted body served once, and the Hugging Face Hub's file route, as the installed
huggingface_hub asks it (HEAD, then GET, of ``/{repo}/resolve/{revision}/{file}``, ``/datasets/...`` for
datasets; the HEAD answer carries ``X-Repo-Commit`` and ``ETag``). Every request is recorded."""

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Set, Tuple

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class Handler(BaseHTTPRequestHandler):
    server: "LocalServer"
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def do_HEAD(self):
        self.answer(body=False)

    def do_GET(self):
        self.answer(body=True)

    def answer(self, body: bool):
        srv = self.server
        path = self.path.split("?", 1)[0]
        srv.requests.append((self.command, path, self.headers.get("Range", "")))
        data = srv.files.get(path)
        if data is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if body and path in srv.corrupt_once:
            srv.corrupt_once.discard(path)
            data = bytes(b ^ 0xFF for b in data)
        start, status = 0, 200
        wanted = self.headers.get("Range", "")
        if wanted.startswith("bytes=") and wanted[6:].split("-")[0].isdigit() and not srv.ignore_range:
            start = int(wanted[6:].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        self.send_response(status)
        self.send_header("Content-Length", str(len(data) - start))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Accept-Ranges", "bytes")
        if "/resolve/" in path:
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("ETag", f'"{hashlib.sha256(srv.files[path]).hexdigest()}"')
        self.end_headers()
        if not body:
            return
        rest = data[start:]
        if path in srv.drop_once:  # half the body, then the connection goes
            srv.drop_once.discard(path)
            self.wfile.write(rest[: len(rest) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(rest)


class LocalServer(ThreadingHTTPServer):
    """``with LocalServer(files) as server``: serves ``files`` ({path: bytes}) at ``server.url``."""

    daemon_threads = True

    def __init__(self, files: Dict[str, bytes]):
        super().__init__(("127.0.0.1", 0), Handler)
        self.files = dict(files)
        self.drop_once: Set[str] = set()
        self.corrupt_once: Set[str] = set()
        self.ignore_range = False  # answer a Range request with the whole file (200), as some servers do
        self.requests: List[Tuple[str, str, str]] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def gets(self, path: str) -> List[str]:
        """The Range headers of the GETs of ``path`` ('' for a whole file)."""
        return [r for method, p, r in self.requests if method == "GET" and p == path]

    def __enter__(self):
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()


def hub_files(repo: str, files: Dict[str, bytes], dataset: bool = False) -> Dict[str, bytes]:
    """``files`` of a Hub repository at the paths of its file route."""
    prefix = f"/datasets/{repo}" if dataset else f"/{repo}"
    return {f"{prefix}/resolve/main/{name}": data for name, data in files.items()}
