"""Fetching from a local server on 127.0.0.1 (tests/local_server.py): resume after a dropped connection, a
corrupted file refused and fetched again, a server that ignores Range, unpacking (members leaving the target
refused), the offline switch, and huggingface_hub pointed at the server (HF_ENDPOINT) for the pretrained files."""

import hashlib
import io
import logging
import os
import subprocess
import sys
import zipfile

import pytest
from conftest import REPO, copy_recipes, run_recipe
from local_server import LocalServer, hub_files

from espnet2_slap.fetch.download import DownloadError, Expected, fetch, unpack

BLOB = os.urandom(3 << 20)  # 3 MB, three 1-MB reads
SHA = hashlib.sha256(BLOB).hexdigest()


@pytest.fixture
def server():
    with LocalServer({"/files/blob.bin": BLOB}) as srv:
        yield srv


def test_a_dropped_connection_is_resumed_with_a_range_request(server, tmp_path):
    server.drop_once.add("/files/blob.bin")
    dest = fetch(f"{server.url}/files/blob.bin", tmp_path / "blob.bin", Expected(size=len(BLOB), sha256=SHA))
    assert dest.read_bytes() == BLOB
    half = len(BLOB) // 2
    assert server.gets("/files/blob.bin") == ["", f"bytes={half}-"]
    assert not (tmp_path / "blob.bin.part").exists()
    # in place and verified: no request, no reading again
    fetch(f"{server.url}/files/blob.bin", dest, Expected(sha256=SHA))
    assert len(server.gets("/files/blob.bin")) == 2


def test_a_partial_file_of_an_earlier_run_is_resumed(server, tmp_path):
    server.drop_once.add("/files/blob.bin")
    with pytest.raises(DownloadError, match=r"not fetched after 1 tries .*run again to resume"):
        fetch(f"{server.url}/files/blob.bin", tmp_path / "blob.bin", retries=1)
    assert (tmp_path / "blob.bin.part").stat().st_size == len(BLOB) // 2
    fetch(f"{server.url}/files/blob.bin", tmp_path / "blob.bin", Expected(sha256=SHA))
    assert server.gets("/files/blob.bin")[-1] == f"bytes={len(BLOB) // 2}-"
    assert (tmp_path / "blob.bin").read_bytes() == BLOB


def test_a_server_that_ignores_range_is_fetched_from_the_start(server, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    server.drop_once.add("/files/blob.bin")
    server.ignore_range = True
    dest = fetch(f"{server.url}/files/blob.bin", tmp_path / "blob.bin", Expected(size=len(BLOB), sha256=SHA))
    assert dest.read_bytes() == BLOB
    assert server.gets("/files/blob.bin") == ["", f"bytes={len(BLOB) // 2}-"]
    assert "the server does not resume (HTTP 200); fetching from the start" in caplog.text


def test_a_corrupted_file_is_refused_and_fetched_again(server, tmp_path, caplog):
    server.corrupt_once.add("/files/blob.bin")
    dest = fetch(f"{server.url}/files/blob.bin", tmp_path / "blob.bin", Expected(md5=hashlib.md5(BLOB).hexdigest()))
    assert dest.read_bytes() == BLOB
    assert server.gets("/files/blob.bin") == ["", ""]
    assert "the fetched file is damaged (md5" in caplog.text
    # a file damaged in place (no record of a check) is fetched again as well
    dest.write_bytes(b"x" * len(BLOB))
    (tmp_path / "blob.bin.verified").unlink()
    fetch(f"{server.url}/files/blob.bin", dest, Expected(sha256=SHA))
    assert dest.read_bytes() == BLOB


def test_a_wrong_size_or_a_missing_file_fails_plainly(server, tmp_path):
    with pytest.raises(DownloadError, match=r"damaged \(3145728 bytes, the publisher gives 5\)"):
        fetch(f"{server.url}/files/blob.bin", tmp_path / "a.bin", Expected(size=5), retries=2, retry_wait=0)
    with pytest.raises(DownloadError, match=r"HTTP 404 .*not there"):
        fetch(f"{server.url}/files/none.bin", tmp_path / "b.bin")


def test_offline_nothing_is_fetched_and_the_missing_file_is_named(server, tmp_path, monkeypatch):
    monkeypatch.setenv("SLAP_OFFLINE", "1")
    with pytest.raises(DownloadError, match=rf"{tmp_path / 'blob.bin'} is missing and the offline switch is on"):
        fetch(f"{server.url}/files/blob.bin", tmp_path / "blob.bin")
    assert server.requests == []
    (tmp_path / "blob.bin").write_bytes(BLOB)
    assert fetch(f"{server.url}/files/blob.bin", tmp_path / "blob.bin", Expected(sha256=SHA)).is_file()
    assert server.requests == []


def test_unpacking_refuses_members_outside_the_target(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("top/ok.txt", "ok")
        z.writestr("../evil.txt", "no")
    (tmp_path / "a.zip").write_bytes(buf.getvalue())
    with pytest.raises(DownloadError, match="members outside the target refused"):
        unpack(tmp_path / "a.zip", tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out").exists()


ROBERTA = {
    "config.json": b'{"model_type": "roberta"}',
    "model.safetensors": os.urandom(200_000),
    "vocab.json": b"{}",
    "merges.txt": b"#version: 0.2\n",
    "tokenizer.json": b"{}",
}
LAION = {"music_audioset_epoch_15_esc_90.14.pt": os.urandom(300_000)}


def fetch_pretrained(tmp_path, server, *args, **env):
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "SLAP_OFFLINE", "HF_TOKEN")},
        "HF_ENDPOINT": server.url,
        "HF_HOME": str(tmp_path / "hf_home"),
        **env,
    }
    cmd = [sys.executable, "-m", "espnet2_slap.bin.slap_fetch", "pretrained", *args, "--downloads", "downloads"]
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)


def test_pretrained_files_from_the_hub_route_and_offline(tmp_path):
    files = {**hub_files("FacebookAI/roberta-base", ROBERTA), **hub_files("lukewys/laion_clap", LAION)}
    with LocalServer(files) as server:
        proc = fetch_pretrained(tmp_path, server)
        assert proc.returncode == 0, proc.stderr[-3000:]
        downloads = tmp_path / "downloads"
        for name, data in ROBERTA.items():
            assert (downloads / "roberta-base" / name).read_bytes() == data
        assert (downloads / "music_audioset_epoch_15_esc_90.14.pt").read_bytes() == LAION[
            "music_audioset_epoch_15_esc_90.14.pt"
        ]
        assert os.readlink(downloads / "htsat_base.pt") == "music_audioset_epoch_15_esc_90.14.pt"
        # (huggingface_hub may also ask /api/agent-harnesses, its client detection)
        assert {p for _, p, _ in server.requests if "/resolve/" in p} == set(files)
        # run again: all there, nothing asked
        server.requests.clear()
        assert fetch_pretrained(tmp_path, server).returncode == 0
        assert server.requests == []
        # offline (either switch): nothing fetched, the missing file named
        (downloads / "roberta-base/vocab.json").unlink()
        for switch in ("HF_HUB_OFFLINE", "SLAP_OFFLINE"):
            proc = fetch_pretrained(tmp_path, server, "roberta-base", **{switch: "1"})
            assert proc.returncode == 1
            assert (
                "downloads/roberta-base lacks vocab.json of FacebookAI/roberta-base and the offline switch"
                in proc.stderr
            )
            assert server.requests == []
        # the HTS-AT AudioSet checkpoint is published on Google Drive only: named with its page
        proc = fetch_pretrained(tmp_path, server, "HTSAT_AudioSet_Saved_1.ckpt")
        assert (
            proc.returncode == 1
            and "published only on https://github.com/RetroCirce/HTS-Audio-Transformer" in proc.stderr
        )


def test_check_names_the_missing_start_files_of_a_config_and_the_command(tmp_path):
    config = REPO / "egs/TEMPLATE/slap1/conf/train_clap_laion.yaml"
    cmd = [sys.executable, "-m", "espnet2_slap.bin.slap_fetch", "check", "--config", str(config)]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 1
    assert (
        "needs downloads/music_audioset_epoch_15_esc_90.14.pt, which is missing: "
        "local/download_pretrained.sh music_audioset_epoch_15_esc_90.14.pt" in proc.stderr
    )
    assert "needs downloads/roberta-base, which is missing: local/download_pretrained.sh roberta-base" in proc.stderr


def test_a_config_whose_start_files_are_missing_stops_the_run_before_stage_1(tmp_path):
    recipe = copy_recipes(tmp_path, "musiccaps") / "musiccaps" / "slap1"
    proc = run_recipe(recipe, "--train_config", "conf/train_slap_pretrained.yaml", "--token_type", "bpe", check=False)
    assert proc.returncode != 0
    assert "needs downloads/roberta-base, which is missing: local/download_pretrained.sh roberta-base" in proc.stderr
    assert "needs downloads/htsat_base.pt, which is missing: local/download_pretrained.sh htsat_base.pt" in proc.stderr
    assert "conf/train_slap_pretrained.yaml starts from files that are not there (above)" in proc.stderr
    assert not (recipe / "data").exists() and not (recipe / "downloads").exists()  # stage 1 did not run
