"""slap.sh checks what the stages to run need before any runs, says what to do, and its last line says which
stages ran (issue 13, items 4, 5, 10); quick: nothing is trained."""

import shutil
import subprocess

import pytest
from conftest import copy_recipes, run_recipe


@pytest.fixture
def recipe(tmp_path):
    return copy_recipes(tmp_path, "mini_synth") / "mini_synth" / "slap1"


def test_a_missing_tokenizer_dir_stops_the_run_before_stage_1(recipe):
    proc = run_recipe(recipe, "--token_type", "hugging_face", "--hf_tokenizer", "downloads/roberta-base", check=False)
    assert proc.returncode != 0
    assert "--hf_tokenizer downloads/roberta-base does not exist: save the tokenizer" in proc.stderr
    assert "--token_type bpe" in proc.stderr
    assert not (recipe / "data").exists()  # stage 1 did not run


def test_a_dump_at_another_rate_is_refused_before_any_stage(recipe):
    record = recipe / "dump/raw/test/audio_format"
    record.parent.mkdir(parents=True)
    record.write_text("48000 Hz flac PCM_16\n")
    proc = run_recipe(recipe, "--stage", "2", "--stop_stage", "2", check=False)
    assert proc.returncode != 0
    assert "dump/raw/test holds audio formatted as 48000 Hz flac PCM_16, this run asks 16000 Hz flac" in proc.stderr
    assert "--dumpdir dump_16000" in proc.stderr


@pytest.mark.skipif(shutil.which("flock") is None, reason="util-linux flock holds the lock of the first run")
def test_a_second_run_in_a_locked_exp_dir_names_the_first(recipe):
    exp = recipe / "exp/slap_train_slap_tiny"
    exp.mkdir(parents=True)
    holder = subprocess.Popen(
        [
            "bash",
            "-c",
            f"exec 9>>{exp}/.lock; flock -n 9 && echo 'pid 4242 on host since then: ./run.sh' >&9 && "
            "echo locked && exec sleep 300",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout.readline() == b"locked\n"
        proc = run_recipe(recipe, "--stage", "8", "--stop_stage", "8", check=False)
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode != 0
    assert "exp/slap_train_slap_tiny is in use by another run: pid 4242 on host since then: ./run.sh" in proc.stderr


def test_the_last_line_says_which_stages_ran(recipe):
    small = ["--local_data_opts", "--num_train 4 --num_valid 2 --num_test 2 --seconds 1"]
    proc = run_recipe(recipe, *small, "--stage", "1", "--stop_stage", "1")
    assert proc.stdout.splitlines()[-1].endswith(
        "Finished stages 1-1 of exp/slap_train_slap_tiny: ran stage 1; already done before: nothing"
    )
    proc = run_recipe(recipe, *small, "--stage", "1", "--stop_stage", "1")
    assert proc.stdout.splitlines()[-1].endswith(
        "Finished stages 1-1 of exp/slap_train_slap_tiny: ran nothing; already done before: stage 1"
    )


def test_tokenizer_export_names_a_missing_directory(tmp_path):
    from conftest import run_module

    proc = run_module(
        "espnet2_slap.bin.slap_tokenizer", "--hugging_face", "downloads/roberta-base", "out", cwd=tmp_path, check=False
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--hugging_face downloads/roberta-base is not a directory: save a tokenizer there first" in proc.stderr
