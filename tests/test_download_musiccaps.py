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
from espnet2_slap.fetch.youtube import fetch_clips

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


# every clip of csv_text() that could be fetched (a ytid and times), and where it lies below --audio_dir
OWN_CLIPS = {
    "-0Gj8-vB1q4": "-0Gj8-vB1q4.wav",
    "-0SdAVK79lg": "-0SdAVK79lg.wav",
    "-0vPFx-wRRI": "-0vPFx-wRRI.flac",
    "-0xzrMun0Rs": "sub/-0xzrMun0Rs.wav",
    GONE: f"{GONE}.wav",
    "-1OlgJWehn8": "-1OlgJWehn8.wav",
    "-1UWSisR2zo": "-1UWSisR2zo.wav",
    "-1aObLmZq3Y": "-1aObLmZq3Y.wav",
}


def without_ytdlp():
    """PATH without yt-dlp (tools/setup.sh does not install it; the recipe's venv comes first, as path.sh puts it)."""
    venv = REPO / "tools" / "venv" / "bin"
    if (venv / "yt-dlp").exists():
        pytest.skip(f"{venv} has yt-dlp")
    dirs = [d for d in os.environ["PATH"].split(os.pathsep) if d and not os.path.exists(os.path.join(d, "yt-dlp"))]
    return {"PATH": os.pathsep.join([str(venv), *dirs])}


def own_clips(tmp_path, ytids):
    """musiccaps/musiccaps-public.csv (no audio/) and the clips ``ytids`` in clips/, outside it."""
    root, clips = tmp_path / "musiccaps", tmp_path / "clips"
    root.mkdir()
    (root / "musiccaps-public.csv").write_text(csv_text(), encoding="utf-8")
    for i, ytid in enumerate(ytids):
        write_audio(clips / OWN_CLIPS[ytid], 1.0, 16000, seed=i)
    return root, clips


def wav_scp(recipe):
    """{ytid: path} of all the sets stage 1 wrote."""
    return {k: v for d in sorted((recipe / "data").glob("*/wav.scp")) for k, v in kaldi(d).items()}


def test_stage_1_with_all_clips_in_another_audio_dir_fetches_nothing_and_prepares_them(tmp_path):
    env = without_ytdlp()
    root, clips = own_clips(tmp_path, OWN_CLIPS)
    recipe = recipe_copy(tmp_path, "musiccaps")
    opts = f"--audio_dir {clips} --valid_percent 50"
    out = run_corpus_recipe(recipe, {**env, "MUSICCAPS": str(root)}, "--stop_stage", "1", "--local_data_opts", opts)
    assert f"all 8 clips of {root}/musiccaps-public.csv are in {clips} or {root}/audio: nothing to fetch" in out
    prepared = {ytid: str(clips / path) for ytid, path in OWN_CLIPS.items() if ytid != "-1OlgJWehn8"}  # malformed
    assert wav_scp(recipe) == prepared
    assert set(kaldi(recipe / "data/test/wav.scp")) == {*TEST_TEXT, GONE}
    assert (recipe / "data/local/musiccaps.missing").read_text() == ""
    assert not (root / "audio").exists() and not (root / ".clips.started").exists()


def test_clips_missing_from_audio_dir_and_musiccaps_audio_are_left_out_and_without_ytdlp_the_error_says_so(
    tmp_path, fake_tools
):
    env = without_ytdlp()
    root, clips = own_clips(tmp_path, [y for y in OWN_CLIPS if y not in (GONE, "-0vPFx-wRRI")])
    write_audio(root / "audio/-0vPFx-wRRI.wav", 1.0, 16000)  # one clip fetched into ${MUSICCAPS}/audio before
    write_audio(root / "audio/-0Gj8-vB1q4.wav", 1.0, 16000)  # and one in both: --audio_dir's is used
    recipe = recipe_copy(tmp_path, "musiccaps")
    env = {**env, "MUSICCAPS": str(root)}
    out = run_corpus_recipe(
        recipe,
        env,
        "--stop_stage",
        "1",
        "--skip_train",
        "true",
        "--local_data_opts",
        f"--sets test --audio_dir {clips}",
    )
    missing = f"1 of the 8 clips of {root}/musiccaps-public.csv are in neither {clips} nor {root}/audio"
    assert f"{missing} (no <ytid>.wav|flac|mp3|ogg anywhere below): stage 1 leaves them out" in out
    expected = {y: str(clips / OWN_CLIPS[y]) for y in TEST_TEXT}
    assert kaldi(recipe / "data/test/wav.scp") == {**expected, "-0vPFx-wRRI": str(root / "audio/-0vPFx-wRRI.wav")}
    assert (recipe / "data/local/musiccaps.missing").read_text() == f"{GONE}\n"

    # asked to fetch the missing clip, without yt-dlp: how many, where it looked, what to do
    proc = run_recipe(
        recipe, "--audio_dir", str(clips), "--again", "true", env=env, check=False, script="local/download.sh"
    )
    assert proc.returncode == 1
    assert f"local/download.sh: {missing} (no <ytid>.wav|flac|mp3|ogg anywhere below)" in proc.stderr
    for what in (
        "needs yt-dlp and ffmpeg, but yt-dlp",
        "pip install 'yt-dlp[default]'",
        f"below {clips}",
        "SLAP_OFFLINE=1",
    ):
        assert what in proc.stderr
    assert not (root / ".clips.started").exists()

    # with yt-dlp: only the clip in neither directory is fetched, into ${MUSICCAPS}/audio, and stage 1 takes it there
    fake_env, fail, log = fake_tools
    fail.write_text("")  # the video is back
    env = {**env, **fake_env}
    run_recipe(recipe, "--audio_dir", str(clips), "--again", "true", env=env, script="local/download.sh")
    assert calls(log) == [f"{GONE} *1-3"]
    assert sorted(p.name for p in (root / "audio").iterdir()) == sorted(
        [f"{GONE}.wav", "-0vPFx-wRRI.wav", "-0Gj8-vB1q4.wav"]
    )
    assert not list(clips.rglob(f"{GONE}.*"))
    (recipe / "data/.done").unlink()
    opts = f"--sets test --audio_dir {clips}"
    run_corpus_recipe(recipe, env, "--stop_stage", "1", "--skip_train", "true", "--local_data_opts", opts)
    assert calls(log) == []
    assert kaldi(recipe / "data/test/wav.scp")[GONE] == str(root / "audio" / f"{GONE}.wav")
    assert (recipe / "data/local/musiccaps.missing").read_text() == ""
