"""MusicCaps fetched by stage 1: the CSV from the Hub dataset route of a local server (HF_ENDPOINT), the clips with
a fake yt-dlp on PATH that fails for the ids listed in a file; the failed ids are listed and counted, the rest
prepared, and local/download.sh --again true asks yt-dlp only for the clips still missing."""

import os
import subprocess
import sys

import pytest
from conftest import REPO, run_recipe
from local_server import LocalServer, hub_files
from test_corpus_common import kaldi, recipe_copy, run_corpus_recipe, write_audio
from test_corpus_musiccaps import TEST_TEXT, csv_text

from espnet2_slap.corpora.common import PrepError
from espnet2_slap.corpora.youtube import fetch_clips

FAKE_YTDLP = """#!{python}
# yt-dlp stand-in: logs its call, fails for the ids in $FAKE_YTDLP_FAIL, else writes a 1-s wav where -o says.
import math, os, struct, sys, wave
args = sys.argv[1:]
ytid = args[-1].split("v=")[-1]
with open(os.environ["FAKE_YTDLP_LOG"], "a") as log:
    log.write(ytid + " " + args[args.index("--download-sections") + 1] + "\\n")
if ytid in open(os.environ["FAKE_YTDLP_FAIL"]).read().split():
    sys.exit("ERROR: [youtube] " + ytid + ": Video unavailable")
with wave.open(args[args.index("-o") + 1].replace("%(ext)s", "wav"), "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)
    w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(i / 8))) for i in range(16000)))
"""
GONE = "gone0000000"
ONCE = "-0xzrMun0Rs"  # fails on the first pass, fetched on the second


@pytest.fixture
def fake_tools(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "yt-dlp").write_text(FAKE_YTDLP.format(python=sys.executable))
    (bin_dir / "ffmpeg").write_text("#!/bin/sh\nexit 0\n")
    for tool in ("yt-dlp", "ffmpeg"):
        (bin_dir / tool).chmod(0o755)
    fail = tmp_path / "fail.txt"
    fail.write_text(f"{GONE}\n{ONCE}\n")
    log = tmp_path / "ytdlp.log"
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_YTDLP_FAIL": str(fail), "FAKE_YTDLP_LOG": str(log)}
    return env, fail, log


def calls(log):
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return sorted(lines)


def test_stage_1_fetches_the_csv_and_clips_lists_the_unavailable_and_a_rerun_fetches_only_those(tmp_path, fake_tools):
    env, fail, log = fake_tools
    recipe = recipe_copy(tmp_path, "musiccaps")
    root = recipe / "downloads/musiccaps"
    with LocalServer(hub_files("google/MusicCaps", {"musiccaps-public.csv": csv_text().encode()}, True)) as server:
        env = {**env, "HF_ENDPOINT": server.url, "HF_HOME": str(tmp_path / "hf_home")}
        out = run_corpus_recipe(
            recipe, env, "--stop_stage", "1", "--skip_train", "true", "--local_data_opts", "--sets test"
        )
    # the rows with a ytid and times: 8 ytids (one twice, one with a bad start), each asked once at start-end
    fetched = ["-0Gj8-vB1q4", "-0SdAVK79lg", "-0vPFx-wRRI", "-1OlgJWehn8", "-1UWSisR2zo", "-1aObLmZq3Y"]
    assert calls(log) == sorted(f"{y} *1-3" for y in [*fetched, GONE, ONCE])
    assert sorted(p.stem for p in (root / "audio").glob("*.wav")) == sorted(fetched)
    unavailable = (root / "unavailable.tsv").read_text().splitlines()
    assert sorted(line.split("\t")[0] for line in unavailable) == sorted([GONE, ONCE])
    gone = next(line.split("\t") for line in unavailable if line.startswith(GONE))
    assert gone[1].endswith("musiccaps-public.csv:7") and gone[2] == f"ERROR: [youtube] {GONE}: Video unavailable"
    assert "2 clips could not be fetched (listed in downloads/musiccaps/unavailable.tsv" in out
    test_text = {k: v for k, v in TEST_TEXT.items() if k != ONCE}
    assert kaldi(recipe / "data/test/text") == test_text
    assert sorted((recipe / "data/local/musiccaps.missing").read_text().split()) == sorted([GONE, ONCE])

    # stage 1 again (its marker removed): the clips were fetched before, nothing is asked of yt-dlp
    (recipe / "data/.done").unlink()
    run_corpus_recipe(recipe, env, "--stop_stage", "1", "--skip_train", "true", "--local_data_opts", "--sets test")
    assert calls(log) == []
    # the missing ones again, one of them back: only those two are asked for
    fail.write_text(f"{GONE}\n")
    env = {**os.environ, "MAIN_ROOT": str(REPO), **env}
    subprocess.run(["local/download.sh", "--again", "true", "--nj", "2"], cwd=recipe, env=env, check=True)
    assert calls(log) == sorted([f"{GONE} *1-3", f"{ONCE} *1-3"])
    assert (root / "audio" / f"{ONCE}.wav").is_file()
    assert [line.split("\t")[0] for line in (root / "unavailable.tsv").read_text().splitlines()] == [GONE]


def test_without_ytdlp_the_recipe_says_how_to_install_it(tmp_path):
    with pytest.raises(PrepError, match=r"no-such-yt-dlp is not installed: pip install .yt-dlp\[default\]."):
        fetch_clips(tmp_path / "x.csv", tmp_path / "audio", ytdlp="no-such-yt-dlp")


def test_offline_nothing_is_fetched_and_stage_1_prepares_the_clips_in_place(tmp_path, fake_tools):
    env, _, log = fake_tools
    recipe = recipe_copy(tmp_path, "musiccaps")
    args = ("--stop_stage", "1", "--skip_train", "true", "--local_data_opts", "--sets test")
    with LocalServer(hub_files("google/MusicCaps", {"musiccaps-public.csv": csv_text().encode()}, True)) as server:
        env = {**env, "HF_ENDPOINT": server.url, "HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_OFFLINE": "1"}
        proc = run_recipe(recipe, *args, env=env, check=False)
        assert proc.returncode != 0
        assert "downloads/musiccaps lacks musiccaps-public.csv and the offline switch is on" in proc.stderr
        root = recipe / "downloads/musiccaps"
        (root / "audio").mkdir(parents=True)
        (root / "musiccaps-public.csv").write_text(csv_text(), encoding="utf-8")
        write_audio(root / "audio/-0Gj8-vB1q4.wav", 1.0, 16000)
        out = run_corpus_recipe(recipe, env, *args)
        assert server.requests == [] and calls(log) == []
    assert "offline: no clip is fetched" in out
    assert kaldi(recipe / "data/test/text") == {"-0Gj8-vB1q4": TEST_TEXT["-0Gj8-vB1q4"]}
