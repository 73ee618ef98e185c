"""Search by text and audio (issue 27): the tiled exact top-k, slap_index (incremental, resumable, the model's
identity) and slap_search (text, audio, JSON), on a freshly initialised tiny model and a folder of short clips."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from search_data import save_model, write_clip, write_music

from espnet2_slap.bin import slap_index, slap_pack, slap_search
from espnet2_slap.metrics.topk import top_k
from espnet2_slap.search.index import IndexProblem, SearchIndex, build_index
from espnet2_slap.search.model import IndexModel, load_model


@pytest.fixture(scope="module")
def trained(tmp_path_factory, bpe):
    return save_model(tmp_path_factory.mktemp("model"), bpe)


@pytest.fixture(scope="module")
def model(trained):
    return load_model(train_config=trained[0], model_file=trained[1])


@pytest.fixture
def music(tmp_path):
    return write_music(tmp_path / "music")


@pytest.mark.parametrize("tile_rows", [1, 7, 1000])
def test_top_k_in_tiles_equals_a_full_sort(tile_rows, tmp_path):
    rng = np.random.default_rng(0)
    catalogue = rng.standard_normal((103, 16)).astype(np.float32)
    np.save(tmp_path / "c.npy", catalogue)
    mapped = np.load(tmp_path / "c.npy", mmap_mode="r")
    queries = rng.standard_normal((3, 16)).astype(np.float32)
    full = catalogue @ queries.T
    for k in (1, 5, 200):
        scores, rows = top_k(mapped, queries, k, tile_rows=tile_rows)
        expected = np.argsort(-full, axis=0, kind="stable")[: min(k, 103)].T
        np.testing.assert_array_equal(rows, expected)
        np.testing.assert_allclose(scores, np.take_along_axis(full.T, expected, axis=1), rtol=1e-5)
        one_scores, one_rows = top_k(mapped, queries[1], k, tile_rows=tile_rows)  # one query: (k,) each
        np.testing.assert_array_equal(one_rows, expected[1])
    with pytest.raises(ValueError, match="do not match"):
        top_k(catalogue, queries[:, :8], 3)


def test_index_is_incremental_and_search_finds_each_clip_first(music, model, trained, tmp_path, capsys):
    index_dir = tmp_path / "index"
    stats = build_index(music, index_dir, model, chunk_size=3)
    assert (stats.tracks, stats.embedded, stats.reused) == (4, 4, 0)
    index = SearchIndex.open(index_dir)
    assert [t.id for t in index.tracks] == ["a_sine.wav", "b_noise.flac", "sub/c_chirp.wav", "sub/d_sine.ogg"]
    assert index.embeddings.dtype == np.float32 and index.embeddings.shape == (4, 64)
    np.testing.assert_allclose(np.linalg.norm(index.embeddings, axis=1), 1, rtol=1e-5)
    assert not (index_dir / "chunks").exists()

    # a rerun (the index's own model) embeds nothing and rewrites nothing
    before = {p.name: p.stat().st_mtime_ns for p in index_dir.iterdir()}
    stats = build_index(music, index_dir)
    assert (stats.embedded, stats.reused, stats.written) == (0, 4, False)
    assert {p.name: p.stat().st_mtime_ns for p in index_dir.iterdir()} == before

    # a new file, a changed one, a removed one, an unreadable one
    write_clip(music / "e_noise.wav", "noise", 3)
    write_clip(music / "a_sine.wav", "sine", 6, seconds=1.25)  # another size: changed whatever the clock's grain
    (music / "sub" / "d_sine.ogg").unlink()
    (music / "zz_bad.wav").write_bytes(b"RIFF not really")
    stats = build_index(music, index_dir, model)
    assert (stats.tracks, stats.embedded, stats.reused, stats.removed) == (5, 2, 2, 1)
    assert stats.unreadable == ["zz_bad.wav"]
    index = SearchIndex.open(index_dir)
    ids = [t.id for t in index.tracks]
    assert ids == ["a_sine.wav", "b_noise.flac", "e_noise.wav", "sub/c_chirp.wav"]
    assert sorted(p.name for p in index_dir.glob("embeddings.*.npy")) == ["embeddings.2.npy"]  # old one removed

    for track in index.tracks:  # an indexed clip as the query finds itself first
        hits = index.search_audio(model, track.path, k=3)
        assert hits[0].id == track.id and hits[0].score == pytest.approx(1.0, abs=1e-5)
        assert [h.rank for h in hits] == [1, 2, 3] and hits[0].score >= hits[1].score >= hits[2].score
    hits = index.search_text(model, "a calm piano piece", k=10)
    assert sorted(h.id for h in hits) == sorted(ids) and all(-1 - 1e-5 <= h.score <= 1 + 1e-5 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)

    # the command line, JSON; the model of the index is loaded from the files it names
    slap_search.main(
        [str(index_dir), "--text", "a calm piano piece", "--audio", str(music / "e_noise.wav"), "-k", "2", "--json"]
    )
    out = json.loads(capsys.readouterr().out)
    assert out["k"] == 2 and [list(q)[0] for q in out["queries"]] == ["text", "audio"]
    assert [h["id"] for h in out["queries"][0]["results"]] == [h.id for h in hits[:2]]
    assert out["queries"][1]["results"][0]["id"] == "e_noise.wav"
    assert set(out["queries"][1]["results"][0]) == {"rank", "id", "path", "score"}
    slap_search.main(
        [
            str(index_dir),
            "--text",
            "organ",
            "-k",
            "1",
            "--train_config",
            str(trained[0]),
            "--model_file",
            str(trained[1]),
        ]
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "text: organ" and len(lines) == 2 and lines[1].split()[0] == "1"


def test_another_model_is_refused_or_rebuilt(music, model, bpe, tmp_path):
    index_dir = tmp_path / "index"
    build_index(music, index_dir, model)
    config, weights = save_model(tmp_path / "other", bpe, seed=1)
    other = load_model(train_config=config, model_file=weights)
    with pytest.raises(IndexProblem, match="embeddings of two models cannot be searched together.*--rebuild"):
        build_index(music, index_dir, other)
    with pytest.raises(IndexProblem, match="query it with its own model"):
        SearchIndex.open(index_dir).search_text(other, "organ")
    with pytest.raises(SystemExit, match="slap_index: .*--rebuild"):
        slap_index.main([str(music), str(index_dir), "--train_config", str(config), "--model_file", str(weights)])
    stats = build_index(music, index_dir, other, rebuild=True)
    assert (stats.embedded, stats.reused) == (4, 0)
    assert SearchIndex.open(index_dir).meta["model"]["sha256"] == other.sha256


def test_a_killed_run_resumes_and_a_packed_model_is_the_same_model(music, model, trained, bpe, tmp_path, monkeypatch):
    index_dir = tmp_path / "index"
    calls = []
    real = IndexModel.embed_audio

    def dies_at_the_third(self, audio):
        calls.append(audio)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as a kill between two chunks: the first chunk (2 tracks) is saved
        return real(self, audio)

    monkeypatch.setattr(IndexModel, "embed_audio", dies_at_the_third)
    with pytest.raises(KeyboardInterrupt):
        build_index(music, index_dir, model, chunk_size=2)
    assert len(list((index_dir / "chunks").glob("chunk_*.npz"))) == 1
    with pytest.raises(IndexProblem, match="an unfinished run left 1 chunk"):
        SearchIndex.open(index_dir)
    monkeypatch.setattr(IndexModel, "embed_audio", real)
    stats = build_index(music, index_dir, model, chunk_size=2)
    assert (stats.embedded, stats.reused, stats.resumed) == (2, 2, 2)
    assert len(SearchIndex.open(index_dir)) == 4 and not (index_dir / "chunks").exists()

    # the same weights packed (stage 9's zip): the same model, nothing embedded again (the CLI from a wav.scp)
    bpemodel, token_list = bpe
    zip_path = tmp_path / "packed.zip"
    slap_pack.main(
        [
            "--train_config",
            str(trained[0]),
            "--model_file",
            str(trained[1]),
            "--option",
            str(token_list),
            "--option",
            str(bpemodel),
            "--outpath",
            str(zip_path),
        ]
    )
    packed = load_model(packed=zip_path)
    assert packed.sha256 == model.sha256 and not packed.loaded
    assert build_index(music, index_dir, packed).embedded == 0
    scp = tmp_path / "wav.scp"
    scp.write_text(f"one {music / 'a_sine.wav'}\ntwo {os.path.relpath(music / 'b_noise.flac')}\n")
    slap_index.main([str(scp), str(tmp_path / "scp_index"), "--model", str(zip_path)])
    index = SearchIndex.open(tmp_path / "scp_index")
    assert [t.id for t in index.tracks] == ["one", "two"] and index.meta["model"]["source"] == {
        "model": str(zip_path.resolve())
    }
    assert index.search_audio(index.load_model(), str(music / "b_noise.flac"), k=1)[0].id == "two"


@pytest.mark.slow
def test_slap_index_killed_with_sigkill_resumes_from_its_chunks(music, trained, tmp_path):
    """A real kill -9 of the command line between chunks: no index.json is left half-written, and the next run
    embeds only what the killed one had not saved."""
    for i in range(40):
        write_clip(music / "more" / f"{i:02d}.wav", "noise", i + 10, seconds=10.0)
    index_dir = tmp_path / "index"
    cmd = [sys.executable, "-m", "espnet2_slap.bin.slap_index", str(music), str(index_dir), "--chunk_size", "1"]
    cmd += ["--train_config", str(trained[0]), "--model_file", str(trained[1])]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while len(list((index_dir / "chunks").glob("chunk_*.npz"))) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, "slap_index ended before it was killed"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not (index_dir / "index.json").exists()
    saved = len(list((index_dir / "chunks").glob("chunk_*.npz")))
    stats = build_index(music, index_dir, load_model(train_config=trained[0], model_file=trained[1]))
    assert stats.resumed == saved and stats.embedded == 44 - saved
    assert len(SearchIndex.open(index_dir)) == 44
