"""The search page (``slap_search INDEX --serve``, issue 27): its JSON and audio routes over HTTP (the CLI's ranking,
exact bytes and Range requests, nothing but the index's rows readable, 400s, loopback only), and the page itself in
a real headless Chromium that types a query, reads the ranked list and loads an audio element."""

import http.client
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import kaldiio
import numpy as np
import pytest
import soundfile
from search_data import FS, clip, save_model, write_clip, write_music

from espnet2_slap.bin import slap_search
from espnet2_slap.search.index import SearchIndex, build_index
from espnet2_slap.search.model import load_model
from espnet2_slap.search.serve import SearchService, bind_warning, byte_range, make_server

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ODD_NAME = "<img src=x onerror=alert(1)> & co.wav"  # a file name that is HTML: the page must show it as text
QUERY = "a calm piano piece"


@pytest.fixture(scope="module")
def collection(tmp_path_factory, bpe):
    """(index directory, the model's files): four clips of write_music, an mp3 and a file named like HTML."""
    root = tmp_path_factory.mktemp("serve")
    trained = save_model(root / "model", bpe)
    music = write_music(root / "music")
    write_clip(music / "e_noise.mp3", "noise", 3)
    write_clip(music / ODD_NAME, "sine", 7, seconds=1.5)
    build_index(music, root / "index", load_model(train_config=trained[0], model_file=trained[1]))
    return root / "index", trained


@pytest.fixture(scope="module")
def server(collection):
    """A server of the index on a free port of 127.0.0.1, serving from a thread."""
    index = SearchIndex.open(collection[0])
    server = make_server(SearchService(index, index.load_model()), port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def get(server, path, headers=None, method="GET"):
    """(status, headers, body) of a request sent as written (no normalisation of ``path``)."""
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=30)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def search(url, text, k):
    with urllib.request.urlopen(f"{url}search?{urllib.parse.urlencode({'text': text, 'k': k})}", timeout=30) as r:
        assert r.headers["Content-Type"].startswith("application/json")
        return json.load(r)


def test_search_json_ranks_what_the_cli_ranks(server, collection, capsys):
    index_dir = collection[0]
    index = SearchIndex.open(index_dir)
    for k in (2, 100):
        answer = search(server.url, QUERY, k)
        slap_search.main([str(index_dir), "--text", QUERY, "-k", str(k), "--json"])
        cli = json.loads(capsys.readouterr().out)
        assert (answer["index"], answer["k"]) == (cli["index"], cli["k"]) == (str(index_dir), k)
        assert answer["queries"][0]["text"] == cli["queries"][0]["text"] == QUERY
        hits, expected = answer["queries"][0]["results"], cli["queries"][0]["results"]
        assert len(hits) == min(k, len(index)) == len(expected)
        for hit, want in zip(hits, expected):
            assert {key: hit[key] for key in ("rank", "id", "path")} == {
                key: want[key] for key in ("rank", "id", "path")
            }
            assert hit["score"] == pytest.approx(want["score"], abs=1e-6)
            assert index.tracks[hit["row"]].id == hit["id"] and set(hit) == {"rank", "id", "path", "score", "row"}
    assert search(server.url, f"  {QUERY} ", 2)["queries"][0]["text"] == QUERY  # blanks around it are dropped


def test_audio_by_row_whole_and_in_ranges(server, collection):
    index = SearchIndex.open(collection[0])
    types = {".wav": "audio/wav", ".flac": "audio/flac", ".ogg": "audio/ogg", ".mp3": "audio/mpeg"}
    assert {os.path.splitext(t.path)[1] for t in index.tracks} == set(types)
    for row, track in enumerate(index.tracks):
        data = open(track.path, "rb").read()
        status, headers, body = get(server, f"/audio/{row}")
        assert status == 200 and body == data, track.id
        assert headers["Content-Type"] == types[os.path.splitext(track.path)[1]]
        assert headers["Accept-Ranges"] == "bytes" and int(headers["Content-Length"]) == len(data)
    data = open(index.tracks[0].path, "rb").read()
    size = len(data)
    for spec, first, last in [("10-99", 10, 99), ("100-", 100, size - 1), ("-20", size - 20, size - 1)]:
        status, headers, body = get(server, "/audio/0", {"Range": f"bytes={spec}"})
        assert status == 206 and body == data[first : last + 1], spec
        assert headers["Content-Range"] == f"bytes {first}-{last}/{size}"
        assert int(headers["Content-Length"]) == last - first + 1
    status, headers, body = get(server, "/audio/0", {"Range": f"bytes={size}-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{size}" and body == b""
    status, headers, body = get(server, "/audio/0", {"Range": "bytes=0-1,5-9"})  # several ranges: the whole file
    assert status == 200 and body == data
    status, headers, body = get(server, "/audio/0", {"Range": "bytes=0-9"}, method="HEAD")
    assert status == 206 and headers["Content-Length"] == "10" and body == b""


def test_byte_range_forms():
    assert byte_range(None, 100) is None and byte_range("items=0-3", 100) is None
    assert byte_range("bytes=0-", 100) == (0, 99) and byte_range("bytes=90-200", 100) == (90, 99)
    assert byte_range("bytes=-500", 100) == (0, 99) and byte_range("bytes = 3 - 4", 100) == (3, 4)
    for bad in ("bytes=100-", "bytes=5-4", "bytes=-0"):
        with pytest.raises(ValueError):
            byte_range(bad, 100)


def test_only_the_index_rows_can_be_read(server, collection):
    paths = ["/audio/../etc/passwd", "/audio/..%2F..%2Fetc%2Fpasswd", "/audio/-1", "/audio/999", "/audio/1.0"]
    paths += ["/audio/", "/audio/0/x", "/audio/99999999999999999999999", "/etc/passwd", "/../../etc/passwd"]
    for path in paths:
        status, headers, body = get(server, path)
        assert status == 404 and "error" in json.loads(body), path
        assert b"root:" not in body
    assert "no row 999: the index has rows 0 to 5" in json.loads(get(server, "/audio/999")[2])["error"]

    index = SearchIndex.open(collection[0])
    path = index.tracks[1].path
    os.rename(path, path + ".away")
    try:
        status, _, body = get(server, "/audio/1")
    finally:
        os.rename(path + ".away", path)
    assert status == 404 and path in json.loads(body)["error"]
    assert get(server, "/audio/1")[0] == 200


def test_bad_queries_get_400_with_a_reason(server):
    queries = ["text=", "text=%20%20", "k=3", "text=x&k=0", "text=x&k=-1", "text=x&k=abc", "text=x&k=1.5"]
    for query in queries + ["text=x&k=", "text=x&k=1001", f"text={'x' * 1001}"]:
        status, headers, body = get(server, f"/search?{query}")
        assert status == 400 and headers["Content-Type"].startswith("application/json"), query
        assert json.loads(body)["error"], query
    assert "k must be a whole number" in json.loads(get(server, "/search?text=x&k=1001")[2])["error"]
    assert get(server, "/search?text=x")[0] == 200  # k defaults to 10


def test_page_and_loopback_only(server):
    status, headers, body = get(server, "/")
    page = body.decode("utf-8")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    for part in ['id="text"', 'id="k"', 'id="search"', 'id="results"', 'preload = "metadata"', "textContent"]:
        assert part in page
    assert "innerHTML" not in page and not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing external

    host, port = server.server_address[:2]
    assert host == "127.0.0.1"
    for name in ("localhost", f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"):
        assert get(server, "/audio/0", {"Host": name})[0] == 200, name
    for name in (f"attacker.example:{port}", "attacker.example", "192.168.1.20"):  # DNS rebinding
        status, _, body = get(server, "/audio/0", {"Host": name})
        assert status == 403 and "answers to 127.0.0.1 or localhost only" in json.loads(body)["error"], name
    with pytest.raises(ConnectionRefusedError):  # another loopback address of this machine: not bound
        http.client.HTTPConnection("127.0.0.2", port, timeout=5).request("GET", "/")
    for loopback in ("127.0.0.1", "::1", "localhost"):
        assert bind_warning(loopback) is None
    for other in ("0.0.0.0", "", "::", "192.168.1.20"):
        assert "anyone who can reach this port" in bind_warning(other)


def test_an_ark_track_is_served_as_wav(collection, tmp_path):
    wave = (clip("chirp", 0) * 32767).astype(np.int16)
    kaldiio.save_ark(str(tmp_path / "a.ark"), {"arked": (FS, wave)}, scp=str(tmp_path / "wav.scp"))
    model = load_model(train_config=collection[1][0], model_file=collection[1][1])
    build_index(tmp_path / "wav.scp", tmp_path / "index", model)
    f, size, kind = SearchService(SearchIndex.open(tmp_path / "index"), model).audio(0)
    with f:
        decoded, rate = soundfile.read(f, dtype="int16")
    assert kind == "audio/wav" and rate == FS and size > 2 * len(wave)
    np.testing.assert_array_equal(decoded, wave)


def test_serve_options_are_checked(collection):
    for wrong in (["--serve", "--text", "x"], ["--serve", "--json"], ["--serve", "--port", "70000"]):
        with pytest.raises(SystemExit):
            slap_search.main([str(collection[0]), *wrong])
    with pytest.raises(SystemExit, match="slap_search: .*cannot serve on 192.0.2.1:0"):
        slap_search.main([str(collection[0]), "--serve", "--host", "192.0.2.1", "--port", "0"])  # not this machine's


def start_serving(index_dir):
    """(process, url) of ``slap_search INDEX --serve --port 0``, once its log names the port."""
    cmd = [sys.executable, "-m", "espnet2_slap.bin.slap_search", str(index_dir), "--serve", "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True).start()
    log, deadline = [], time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            log.append(lines.get(timeout=1))
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        m = re.search(rf"serving {re.escape(str(index_dir))} on (http://127\.0\.0\.1:(\d+)/)$", log[-1].rstrip())
        if m:
            assert int(m.group(2)) > 0
            return proc, m.group(1)
    proc.kill()
    raise AssertionError("slap_search --serve did not log its URL:\n" + "".join(log[-30:]))


def browser_missing():
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    return missing


@pytest.mark.skipif(bool(browser_missing()), reason=f"no headless browser to drive: missing {browser_missing()}")
def test_the_page_in_headless_chromium(collection, monkeypatch):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must not look for a browser or driver online
    index_dir = collection[0]
    index = SearchIndex.open(index_dir)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument("--disable-background-networking")
    options.add_argument("--autoplay-policy=no-user-gesture-required")
    proc, driver = None, None
    try:
        proc, url = start_serving(index_dir)
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
        driver.get(url)
        driver.find_element(By.ID, "text").send_keys(QUERY)
        k = driver.find_element(By.ID, "k")
        k.clear()
        k.send_keys(str(len(index)))
        driver.find_element(By.ID, "search").click()
        results = driver.find_element(By.ID, "results")
        WebDriverWait(driver, 30).until(lambda d: results.get_attribute("data-state") in ("done", "error"))
        assert results.get_attribute("data-state") == "done", driver.find_element(By.ID, "status").text

        expected = search(url, QUERY, len(index))["queries"][0]["results"]
        items = results.find_elements(By.TAG_NAME, "li")
        shown = [(li.find_element(By.CLASS_NAME, "id").text, li.get_attribute("data-row")) for li in items]
        assert shown == [(hit["id"], str(hit["row"])) for hit in expected]
        assert [li.find_element(By.CLASS_NAME, "rank").text for li in items] == [
            f"{i}." for i in range(1, len(index) + 1)
        ]
        assert ODD_NAME in [name for name, _ in shown] and not results.find_elements(By.TAG_NAME, "img")

        state = (
            "return Array.from(document.querySelectorAll('#results audio'), a => [a.readyState, a.error, a.duration]);"
        )
        loaded = WebDriverWait(driver, 30).until(
            lambda d: (s := d.execute_script(state)) and all(ready >= 1 or error for ready, error, _ in s) and s
        )
        for (ready, error, duration), hit in zip(loaded, expected):
            assert ready >= 1 and error is None, f"{hit['id']}: the audio element did not load: {error}"
            assert duration == pytest.approx(soundfile.info(hit["path"]).duration, abs=0.06), hit["id"]
        assert driver.find_element(By.CSS_SELECTOR, "#results audio").get_attribute("preload") == "metadata"
    finally:
        if driver is not None:
            driver.quit()
        if proc is not None:
            proc.kill()
            proc.wait()
