"""Stage 1 fetches a corpus that db.sh points at nothing from a local server standing for its publisher (the
miniature corpora of tests/test_corpus_<corpus>.py, packed as the releases are: Zenodo records with their file
lists and MD5s, split zips, tarballs with a top directory), through a dropped connection and a corrupted file,
and prepares the data dirs; offline, nothing is fetched and what is missing is named."""

import hashlib
import io
import json
import tarfile
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Dict

import numpy as np
import pytest
import soundfile as sf
from conftest import run_recipe
from local_server import LocalServer
from test_corpus_common import kaldi, recipe_copy, run_corpus_recipe, write_audio
from test_corpus_gtzan import make_corpus as make_gtzan
from test_corpus_mtat import make_corpus as make_mtat
from test_corpus_openmic import make_corpus as make_openmic
from test_corpus_song_describer import CSV as SDD_CSV
from test_corpus_song_describer import TEXT as SDD_TEXT

from espnet2_slap.fetch import corpus_sources as sources
from espnet2_slap.fetch.download import DownloadError, Expected


def zip_of(root: Path, prefix: str = "") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                z.write(path, prefix + path.relative_to(root).as_posix())
    return buf.getvalue()


def tgz_of(root: Path, top: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        t.add(root, arcname=top)
    return buf.getvalue()


def zenodo(record: str, files: Dict[str, bytes]) -> Dict[str, bytes]:
    """A Zenodo record as its API serves it: the file list with sizes and MD5s, and each file's content."""
    listing = {
        "files": [
            {"key": key, "size": len(data), "checksum": f"md5:{hashlib.md5(data).hexdigest()}"}
            for key, data in files.items()
        ]
    }
    served = {f"/api/records/{record}": json.dumps(listing).encode()}
    served.update({f"/api/records/{record}/files/{key}/content": data for key, data in files.items()})
    return served


def stage1(recipe: Path, server: LocalServer, *args: str, **env: str):
    return run_corpus_recipe(recipe, {"SLAP_MIRROR": server.url, **env}, "--stop_stage", "1", *args)


def test_song_describer_from_its_zenodo_record(tmp_path):
    audio = tmp_path / "release"
    write_audio(audio / "00/18500.2min.mp3", 2.5, 44100, channels=2, seed=1)
    write_audio(audio / "10/1001.2min.mp3", 2.0, 44100, seed=2)
    write_audio(audio / "03/3003.mp3", 2.0, 44100, seed=3)
    files = zenodo("10072001", {"song_describer.csv": SDD_CSV.encode(), "audio.zip": zip_of(audio, "audio/")})
    recipe = recipe_copy(tmp_path, "song_describer")
    with LocalServer(files) as server:
        server.drop_once.add("/api/records/10072001/files/audio.zip/content")
        server.corrupt_once.add("/api/records/10072001/files/song_describer.csv/content")
        log = stage1(recipe, server)
        assert len(server.gets("/api/records/10072001/files/audio.zip/content")) == 2  # resumed
        assert server.gets("/api/records/10072001/files/audio.zip/content")[1].startswith("bytes=")
        assert len(server.gets("/api/records/10072001/files/song_describer.csv/content")) == 2  # refused, again
        assert "the fetched file is damaged (md5" in log
    root = recipe / "downloads/song_describer"
    assert (root / "audio/00/18500.2min.mp3").is_file() and not (root / "audio/audio").exists()
    assert kaldi(recipe / "data/test/text") == SDD_TEXT
    assert kaldi(recipe / "data/test/wav.scp")["1001"] == str(root / "audio/10/1001.2min.mp3")


def test_openmic_from_its_zenodo_tarball_and_offline(tmp_path):
    release = make_openmic(tmp_path / "release/openmic-2018")
    files = zenodo("1432913", {"openmic-2018-v1.0.0.tgz": tgz_of(release, "openmic-2018")})
    recipe = recipe_copy(tmp_path, "openmic")
    with LocalServer(files) as server:
        # offline first: nothing fetched, the missing files named, stage 1 fails
        env = {"SLAP_MIRROR": server.url, "SLAP_OFFLINE": "1"}
        proc = run_recipe(recipe, "--stop_stage", "1", env=env, check=False)
        assert proc.returncode != 0 and server.requests == []
        assert "downloads/openmic-2018 lacks openmic-2018.npz, partitions, audio and the offline switch" in proc.stderr
        stage1(recipe, server, "--local_data_opts", "--valid_percent 44")
    root = recipe / "downloads/openmic-2018"
    assert (root / "openmic-2018.npz").is_file() and (root / "openmic-2018-v1.0.0.tgz").is_file()
    assert kaldi(recipe / "data/test/utt2instruments") == {
        "000308_61440": "piano",
        "000312_184320": "voice",
        "000320_0": "drums",
        "000321_3840": "",
    }


def test_mtat_from_its_split_zip(tmp_path):
    release = make_mtat(tmp_path / "release")
    whole = zip_of(release / "mp3")
    third = len(whole) // 3
    files = {"/datasets/magnatagatune/annotations_final.csv": (release / "annotations_final.csv").read_bytes()}
    for i, part in enumerate((whole[:third], whole[third : 2 * third], whole[2 * third :]), 1):
        files[f"/datasets/magnatagatune/mp3.zip.00{i}"] = part
    recipe = recipe_copy(tmp_path, "mtat")
    with LocalServer(files) as server:
        server.drop_once.add("/datasets/magnatagatune/mp3.zip.002")
        stage1(recipe, server, "--test_sets", "train valid test")
        assert server.gets("/datasets/magnatagatune/mp3.zip.002")[1].startswith("bytes=")
    root = recipe / "downloads/mtat"
    assert not (root / "mp3.zip").exists() and (root / "mp3.zip.003").is_file()  # parts kept, the join not
    # a part damaged inside a clip's bytes (no checksum to tell): the zip's CRC-32 fails, and the error says
    # what to remove
    part1 = bytearray(files["/datasets/magnatagatune/mp3.zip.001"])
    part1[len(part1) // 2] ^= 0xFF
    with LocalServer({**files, "/datasets/magnatagatune/mp3.zip.001": bytes(part1)}) as server:
        with pytest.raises(
            DownloadError, match=r"(?s)CRC.*No checksums are published for mp3.zip.001, .*: remove them"
        ):
            sources.fetch_corpus("mtat", tmp_path / "damaged", server.url)
    assert not (tmp_path / "damaged/mp3").exists() and not (tmp_path / "damaged/mp3.zip").exists()
    assert kaldi(recipe / "data/train/utt2tags") == {"6": "guitar no_vocals", "15": "slow ambient"}
    assert kaldi(recipe / "data/test/utt2tags") == {"2": "classical strings"}


def test_gtzan_tarball_is_checked_against_the_pinned_checksum(tmp_path, monkeypatch):
    release, broken = make_gtzan(tmp_path / "release")
    for wav in release.rglob("*.wav"):  # the release's files are .au
        au = wav.with_suffix(".au")
        if wav.stem == broken:
            wav.rename(au)
        else:
            data, fs = sf.read(wav)
            sf.write(au, data.astype(np.float32), fs, format="AU", subtype="PCM_16")
            wav.unlink()
    archive = tgz_of(release / "genres", "genres")
    recipe = recipe_copy(tmp_path, "gtzan")
    with LocalServer({"/sound/genres.tar.gz": archive}) as server:
        # not the archive torchaudio pins: refused every time, nothing unpacked
        with pytest.raises(DownloadError, match=r"genres.tar.gz: .*damaged \(sha256 .*, the publisher gives 24347e"):
            sources.fetch_corpus("gtzan", tmp_path / "refused", server.url, retries=2, retry_wait=0)
        assert not (tmp_path / "refused/genres").exists() and len(server.gets("/sound/genres.tar.gz")) == 2
        # the same with the miniature's checksum pinned instead: fetched, unpacked, prepared by stage 1
        source = replace(
            sources.CORPORA["gtzan"].sources[0], expected=Expected(sha256=hashlib.sha256(archive).hexdigest())
        )
        monkeypatch.setitem(sources.CORPORA, "gtzan", replace(sources.CORPORA["gtzan"], sources=(source,)))
        sources.fetch_corpus("gtzan", recipe / "downloads/gtzan", server.url)
    run_corpus_recipe(recipe, {}, "--stop_stage", "1")
    scp = kaldi(recipe / "data/test/wav.scp")
    assert scp and all(
        path.startswith(str(recipe / "downloads/gtzan/genres")) and path.endswith(".au") for path in scp.values()
    )
