"""A local web page to try text-to-music search over an index (``slap_search INDEX --serve``): a text box, a number
of results, and the ranked tracks with their scores and an audio player each.

    GET /                       the page (HTML with a small inline script; no external resources)
    GET /search?text=...&k=10   {"index", "k", "queries": [{"text", "results": [{"rank", "id", "path", "score",
                                "row"}]}]}: what ``slap_search --json`` prints, with each track's row in the index;
                                an empty text or a k that is not a positive integer: 400 {"error": ...}
    GET /audio/<row>            the audio file of the index's row <row> (Content-Type by its extension, HTTP Range
                                requests for seeking); a track in a Kaldi ark is served as WAV. Only a row number
                                is taken, never a path: nothing but the index's own tracks can be read. A row out of
                                range, or a file gone since the index was made: 404 {"error": ...}

Why the standard library (``http.server.ThreadingHTTPServer``) and not a web framework: the page is one form and
two JSON/file endpoints, which needs no routing, templating or middleware, so no dependency is worth adding; the
model and the index are loaded once, in this process, and every request uses them; and it serves one user on their
own machine, not production traffic (http.server is not hardened for that). It binds 127.0.0.1 by default; on any
other address everyone who can reach the port can read the index's audio files, and a warning says so. Bound to
loopback, it answers only requests whose Host is 127.0.0.1, ::1 or localhost (403 otherwise): a site elsewhere
that re-points its own name at 127.0.0.1 (DNS rebinding) cannot read the index through the user's browser.

Searches are serialised by a lock (the model is not assumed thread-safe); audio is streamed in parallel. The index
is the generation open at start: a later ``slap_index`` run is seen after a restart.
"""

import io
import ipaddress
import json
import logging
import mimetypes
import os
import re
import socket
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import BinaryIO, Dict, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

import numpy as np
import soundfile
from typeguard import typechecked

from espnet2_slap.evaluation.embed import read_wav_scp_entry
from espnet2_slap.search.index import SearchIndex, answer_json
from espnet2_slap.search.model import IndexModel

logger = logging.getLogger(__name__)

CONTENT_TYPES = {".wav": "audio/wav", ".flac": "audio/flac", ".mp3": "audio/mpeg", ".ogg": "audio/ogg"}
COPY_BYTES = 1 << 16  # bytes sent at a time
MAX_K = 1000  # results a page asks for at most
MAX_TEXT = 1000  # characters of a query


class BadQuery(ValueError):
    """A query the page or a client got wrong (400)."""


class NotFound(LookupError):
    """No such row, or its file is gone (404)."""


class Forbidden(PermissionError):
    """A request to a loopback server by another host name (403): a web page of elsewhere that re-pointed its name
    at 127.0.0.1 (DNS rebinding) must not read the index's files."""


class SearchService:
    """An opened index and its model (loaded once, here), answering the page's queries and audio requests."""

    @typechecked
    def __init__(self, index: SearchIndex, model: IndexModel):
        index.check_model(model)
        self.index, self.model = index, model
        model.model  # built now: the first query is not slowed, and a model that cannot be built fails at start
        self.rows = {track.id: row for row, track in enumerate(index.tracks)}
        self._lock = threading.Lock()

    def search(self, text: Optional[str], k: Optional[str]) -> Dict:
        """The JSON of a query (``text`` and ``k`` as the URL gives them, None if absent)."""
        text = (text or "").strip()
        if not text:
            raise BadQuery("give a text to search by (text=...)")
        if len(text) > MAX_TEXT:
            raise BadQuery(f"the text is {len(text)} characters long, at most {MAX_TEXT} are taken")
        k = "10" if k is None else k.strip()
        if not re.fullmatch(r"[0-9]+", k) or not 1 <= int(k) <= MAX_K:
            raise BadQuery(f"k must be a whole number from 1 to {MAX_K}, not {k!r}")
        start = time.perf_counter()
        with self._lock:
            hits = self.index.search_text(self.model, text, int(k))
        logger.info(f"{text!r}: {len(hits)} results in {1000 * (time.perf_counter() - start):.0f} ms")
        return answer_json(self.index.directory, int(k), [({"text": text}, hits)], self.rows)

    def audio(self, row: int) -> Tuple[BinaryIO, int, str]:
        """(an open binary file, its size, its Content-Type) of the track of ``row``."""
        if not 0 <= row < len(self.index):
            raise NotFound(f"no row {row}: the index has rows 0 to {len(self.index) - 1}")
        track = self.index.tracks[row]
        if ".ark:" in track.path:  # a Kaldi ark reference: its waveform, as WAV
            sample_rate = self.model.model.sample_rate
            try:
                wave = read_wav_scp_entry(track.id, track.path, sample_rate)
            except (OSError, ValueError) as e:
                raise NotFound(f"track {track.id}: cannot read {track.path}: {e}") from None
            data = io.BytesIO()
            soundfile.write(data, np.asarray(wave), sample_rate, format="WAV", subtype="PCM_16")
            size = data.tell()
            data.seek(0)  # read from the start, as an opened file is
            return data, size, "audio/wav"
        try:
            f = open(track.path, "rb")
        except OSError as e:
            raise NotFound(f"track {track.id}: the file {track.path} cannot be read ({e.strerror})") from None
        ext = os.path.splitext(track.path)[1].lower()
        kind = CONTENT_TYPES.get(ext) or mimetypes.guess_type(track.path)[0] or "application/octet-stream"
        return f, os.fstat(f.fileno()).st_size, kind


def byte_range(header: Optional[str], size: int) -> Optional[Tuple[int, int]]:
    """(first, last) byte of a ``Range: bytes=...`` header, None to send the whole file (no header, or a form
    this server does not take: several ranges, another unit); ValueError when no byte of it is in the file."""
    m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header or "")
    if m is None or m.group(1) == m.group(2) == "":
        return None
    if m.group(1) == "":  # the last N bytes
        suffix = int(m.group(2))
        if suffix == 0 or size == 0:
            raise ValueError("an empty range")
        return max(0, size - suffix), size - 1
    first = int(m.group(1))
    last = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    if first >= size or last < first:
        raise ValueError(f"bytes {first}-{m.group(2)} of a file of {size}")
    return first, last


class Handler(BaseHTTPRequestHandler):
    """The three routes of the module's doc; ``server.service`` answers them."""

    server_version = "slap_search"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._route(send_body=True)

    def do_HEAD(self) -> None:
        self._route(send_body=False)

    def _route(self, send_body: bool) -> None:
        url = urlsplit(self.path)
        service: SearchService = self.server.service
        try:
            if self.server.loopback and not loopback_name(urlsplit(f"//{self.headers.get('Host', '')}").hostname):
                raise Forbidden(f"Host {self.headers.get('Host')!r}: this page answers to 127.0.0.1 or localhost only")
            if url.path in ("/", "/index.html"):
                self._send(HTTPStatus.OK, PAGE.encode("utf-8"), "text/html; charset=utf-8", send_body)
            elif url.path == "/search":
                query = parse_qs(url.query, keep_blank_values=True)
                answer = service.search(*(query.get(name, [None])[0] for name in ("text", "k")))
                self._json(HTTPStatus.OK, answer, send_body)
            elif (m := re.fullmatch(r"/audio/([0-9]{1,18})", url.path)) is not None:
                self._audio(*service.audio(int(m.group(1))), send_body)
            else:
                raise NotFound(f"no such page: {url.path} (the page is /, its queries /search and /audio/<row>)")
        except BadQuery as e:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(e)}, send_body)
        except NotFound as e:
            self._json(HTTPStatus.NOT_FOUND, {"error": str(e)}, send_body)
        except Forbidden as e:
            self._json(HTTPStatus.FORBIDDEN, {"error": str(e)}, send_body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser went away (a player that seeks closes its previous request)
        except Exception as e:  # a bug or a model error: say it, and keep serving
            logger.exception(f"{self.path}: failed")
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{type(e).__name__}: {e}"}, send_body)

    def _send(self, status: HTTPStatus, body: bytes, content_type: str, send_body: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _json(self, status: HTTPStatus, obj: Dict, send_body: bool) -> None:
        body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        self._send(status, body, "application/json; charset=utf-8", send_body)

    def _audio(self, f: BinaryIO, size: int, content_type: str, send_body: bool) -> None:
        with f:
            try:
                span = byte_range(self.headers.get("Range"), size)
            except ValueError:
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            first, last = span if span is not None else (0, size - 1)
            self.send_response(HTTPStatus.OK if span is None else HTTPStatus.PARTIAL_CONTENT)
            self.send_header("Content-Type", content_type)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(last - first + 1))
            if span is not None:
                self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
            self.end_headers()
            if not send_body:
                return
            f.seek(first)
            left = last - first + 1
            while left > 0:
                data = f.read(min(COPY_BYTES, left))
                if not data:  # the file shrank while being sent: the client sees a short body
                    self.close_connection = True
                    break
                self.wfile.write(data)
                left -= len(data)

    def log_message(self, format: str, *args) -> None:
        logger.debug(f"{self.address_string()} {format % args}")


class Server(ThreadingHTTPServer):
    """A ThreadingHTTPServer holding the SearchService its handlers answer with (IPv4 or IPv6 by the host)."""

    daemon_threads = True

    def __init__(self, address: Tuple[str, int], service: SearchService):
        if address[0]:  # "" binds every IPv4 address
            self.address_family = socket.getaddrinfo(address[0], address[1], type=socket.SOCK_STREAM)[0][0]
        self.service = service
        self.loopback = is_loopback(address[0])  # then requests must name a loopback host (Handler)
        super().__init__(address, Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def loopback_name(name: Optional[str]) -> bool:
    """Whether ``name`` (a request's Host, without port) is "localhost" or a loopback address, as written (no
    lookup); a request without a Host (HTTP/1.0) passes."""
    if not name or name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` names is a loopback one (127.0.0.0/8, ::1)."""
    if host and loopback_name(host):
        return True
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)


def bind_warning(host: str) -> Optional[str]:
    """The warning of a bind address other than loopback, None for a loopback one."""
    if is_loopback(host):
        return None
    return (
        f"--host {host or '(all addresses)'} is not a loopback address: anyone who can reach this port can search "
        "the index and read every audio file it lists"
    )


def make_server(service: SearchService, host: str = "127.0.0.1", port: int = 8000) -> Server:
    """The server of ``service``, bound (``port`` 0: a free port; ``server.url`` says which) but not serving yet."""
    warning = bind_warning(host)
    if warning:
        logger.warning(warning)
    try:
        return Server((host, port), service)
    except OSError as e:
        raise OSError(e.errno, f"cannot serve on {host}:{port}: {e.strerror or e}") from None


def serve(index: SearchIndex, model: IndexModel, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Loads the model, binds, logs "serving <index> on <url>" and serves until interrupted (Ctrl-C)."""
    server = make_server(SearchService(index, model), host, port)
    logger.info(f"serving {index.directory} on {server.url}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        logger.info("stopped")
    finally:
        server.server_close()


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>slap_search</title>
<style>
body { font-family: sans-serif; max-width: 60em; margin: 2em auto; padding: 0 1em; }
form { display: flex; gap: 0.5em; margin-bottom: 1em; }
#text { flex: 1; font-size: 1.1em; }
#k { width: 4em; }
#results { list-style: none; padding-left: 0; }
#results li { margin: 0.6em 0; }
.score { font-family: monospace; margin: 0 0.6em; }
.path { color: #666; font-size: 0.85em; display: block; overflow-wrap: anywhere; }
audio { display: block; width: 100%; margin-top: 0.2em; }
#status.error { color: #b00; }
</style>
</head>
<body>
<h1>slap_search</h1>
<form id="form">
<input id="text" name="text" type="search" placeholder="a calm piano piece" autofocus required>
<label>k <input id="k" name="k" type="number" min="1" max="1000" value="10"></label>
<button id="search" type="submit">Search</button>
</form>
<p id="status"></p>
<ol id="results" data-state="idle"></ol>
<script>
"use strict";
const form = document.getElementById("form");
const statusLine = document.getElementById("status");
const list = document.getElementById("results");

function show(text, isError) {
  statusLine.textContent = text;
  statusLine.className = isError ? "error" : "";
}

function item(hit) {
  const li = document.createElement("li");
  li.dataset.row = hit.row;
  const rank = document.createElement("span");
  rank.className = "rank";
  rank.textContent = hit.rank + ".";
  const score = document.createElement("span");
  score.className = "score";
  score.textContent = hit.score.toFixed(4);
  const name = document.createElement("span");
  name.className = "id";
  name.textContent = hit.id;
  const path = document.createElement("span");
  path.className = "path";
  path.textContent = hit.path;
  const audio = document.createElement("audio");
  audio.controls = true;
  audio.preload = "metadata";
  audio.src = "/audio/" + encodeURIComponent(hit.row);
  li.append(rank, score, name, path, audio);
  return li;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const query = new URLSearchParams({ text: document.getElementById("text").value,
                                      k: document.getElementById("k").value });
  list.dataset.state = "loading";
  show("searching...", false);
  try {
    const response = await fetch("/search?" + query);
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || response.statusText);
    const hits = answer.queries[0].results;
    list.replaceChildren(...hits.map(item));
    show(hits.length + " results for \\u201c" + answer.queries[0].text + "\\u201d", false);
    list.dataset.state = "done";
  } catch (error) {
    list.replaceChildren();
    show(String(error.message || error), true);
    list.dataset.state = "error";
  }
});
</script>
</body>
</html>
"""
