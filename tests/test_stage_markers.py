"""Every stage knows what made it (issue 24): a marker records a stage's options, the files it read and the
markers of the stages it used, so changed inputs redo that stage and those after it, with a line naming what
changed; the model's config owns its sampling rate and tokenizer; a config from elsewhere is read where it was
made. Each case of the issue fails on the code before it."""

import json

import numpy as np
import pytest
import yaml
from conftest import MINI_SYNTH_OPTS as SMALL
from conftest import copy_recipes, run_recipe

from espnet2_slap.tasks.recipe_config import localize_paths

TINY_SLAP = "conf/tuning/train_slap_tiny.yaml"
# fewer and shorter clips than the default recipe's tests: these check what the stages do, not what they learn
TINY = ["--local_data_opts", "--num_train 8 --num_valid 4 --num_test 4 --seconds 2"]


@pytest.fixture
def recipe(tmp_path):
    return copy_recipes(tmp_path, "mini_synth") / "mini_synth" / "slap1"


def lines(path):
    return path.read_text().splitlines()


def test_changed_data_options_redo_stage_1_and_what_used_its_output(recipe):
    """Item 3: --local_data_opts changed after a first run (the Song Describer README's "--subset all")."""
    (recipe / "data").mkdir()
    (recipe / "data/.done").touch()  # as an older slap.sh left it: it recorded nothing
    proc = run_recipe(recipe, *TINY, "--stop_stage", "2")
    assert "stage 1: redoing it: data/.done was left by an older slap.sh, which did not record" in proc.stdout
    more = TINY[1].replace("--num_test 4", "--num_test 6")
    proc = run_recipe(recipe, "--local_data_opts", more, "--stop_stage", "2")
    assert (
        f"stage 1: redoing it: changed since it was made: local_data_opts {TINY[1]} -> {more}" in proc.stdout
    ), proc.stdout
    assert len(lines(recipe / "data/test/wav.scp")) == 6 and len(lines(recipe / "dump/raw/test/wav.scp")) == 6
    assert "stage 2 test: redoing it: changed since it was made: data/test (contents)" in proc.stdout
    proc = run_recipe(recipe, "--local_data_opts", more, "--stop_stage", "2")
    assert "stage 1: already done" in proc.stdout and "stage 2 test: already done" in proc.stdout
    # db.sh's variables as the environment sets them: a corpus pointed elsewhere is prepared anew
    (recipe / "db.sh").write_text("MINI_SYNTH=${MINI_SYNTH:-}\n")
    run_recipe(recipe, "--local_data_opts", more, "--stop_stage", "1")
    proc = run_recipe(recipe, "--local_data_opts", more, "--stop_stage", "1", env={"MINI_SYNTH": "elsewhere"})
    assert "stage 1: redoing it: changed since it was made: db.sh MINI_SYNTH  -> elsewhere" in proc.stdout, proc.stdout
    proc = run_recipe(recipe, "--local_data_opts", more, "--stop_stage", "1", env={"MINI_SYNTH": "elsewhere"})
    assert "stage 1: already done" in proc.stdout


AT_22050 = ["--fs", "22050", "--dumpdir", "dump_22050"]


@pytest.fixture(scope="module")
def at_22050(tmp_path_factory):
    """A copy of the recipe through stage 4 with --fs 22050 and the 16-kHz tiny config (its console log in
    first_run.log); the tests of stages 4 and 5 share it."""
    recipe = copy_recipes(tmp_path_factory.mktemp("at_22050"), "mini_synth") / "mini_synth" / "slap1"
    proc = run_recipe(recipe, *TINY, *AT_22050, "--stop_stage", "4")
    (recipe / "first_run.log").write_text(proc.stdout)
    return recipe


def test_the_training_config_owns_the_sampling_rate_and_fs_overrides_it_for_training(at_22050):
    """Item 4: --fs 22050 with the 16-kHz tiny config reached stage 2 only, and stage 4 failed on every clip."""
    recipe = at_22050
    assert (
        f"--fs 22050 overrides the 16000 Hz of {TINY_SLAP}: training gets --frontend_conf fs=22050"
        in (recipe / "first_run.log").read_text()
    )
    assert lines(recipe / "dump_22050/raw/train/audio_format") == ["22050 Hz flac PCM_16"]
    assert "--frontend_conf fs=22050" in (recipe / "exp/stats_22050/logdir/stats.1.log").read_text()
    assert (recipe / "exp/stats_22050/train/feats_stats.npz").is_file()
    # statistics of other features are not trained on (a sweep's tasks share stage 4's): refused, naming them
    other = [*AT_22050, "--train_args", "--frontend_conf n_mels=32"]
    proc = run_recipe(recipe, *TINY, *other, "--stage", "5", "--stop_stage", "5", check=False)
    assert proc.returncode != 0 and not (recipe / "exp/slap_train_slap_tiny/train.log").exists()
    assert "stage 5: the statistics in exp/stats_22050 were made for other features than " in proc.stderr
    assert '(feature:frontend_conf {"fmax": 8000.0, "fmin": 30.0, "fs": 22050, "hop_length": 160, "n_fft": 512, ' in (
        proc.stderr
    )
    # without --fs, the config's rate: stage 2 formats at 16 kHz into the default dump
    proc = run_recipe(recipe, *TINY, "--stage", "2", "--stop_stage", "2", "--test_sets", "test")
    assert "Stage 2: audio formatting to 16000 Hz mono flac in dump/raw" in proc.stdout
    # two rates asked at once
    proc = run_recipe(recipe, "--fs", "22050", "--train_args", "--frontend_conf fs=8000", "--stage", "4", check=False)
    assert proc.returncode != 0
    assert '--fs 22050 and --train_args "--frontend_conf fs=8000" ask for two sampling rates' in proc.stderr


def test_an_evaluated_model_owns_the_sampling_rate(recipe, tmp_path):
    """Item 4, evaluation only: --fs is refused when it is not the model's, before stage 2."""
    model = tmp_path / "model.pth"
    model.write_bytes(b"weights")
    evaluate = ["--skip_train", "true", "--inference_config", TINY_SLAP, "--inference_model", str(model)]
    proc = run_recipe(recipe, *evaluate, "--fs", "22050", "--stage", "2", check=False)
    assert proc.returncode != 0 and not (recipe / "dump").exists()
    assert f"the model {model} expects 16000 Hz audio (the front end of {TINY_SLAP}), --fs asks 22050" in proc.stderr
    proc = run_recipe(recipe, "--skip_train", "true", "--stage", "2", "--stop_stage", "2", check=False)
    assert proc.returncode != 0 and "stage 2 needs a sampling rate: --fs, or the model whose rate it is" in proc.stderr


def test_a_dump_in_another_format_suggests_a_dump_dir_not_in_use(recipe):
    """Item 5: --audio_format wav on a flac dump suggested --dumpdir dump_16000, the directory already in use."""
    flac = "16000 Hz flac PCM_16"
    (recipe / "dump/raw/test").mkdir(parents=True)
    (recipe / "dump/raw/test/audio_format").write_text(flac + "\n")
    proc = run_recipe(recipe, "--audio_format", "wav", "--stage", "2", check=False)
    assert proc.returncode != 0
    assert f"dump/raw/test holds audio formatted as {flac}, this run asks 16000 Hz wav PCM_16" in proc.stderr
    assert "give another --dumpdir (--dumpdir dump_16000_wav)" in proc.stderr
    # the suggestion is neither the dump dir in use nor one holding another format
    (recipe / "dump").rename(recipe / "dump_16000_wav")
    proc = run_recipe(recipe, "--audio_format", "wav", "--dumpdir", "dump_16000_wav", "--stage", "2", check=False)
    assert proc.returncode != 0 and "give another --dumpdir (--dumpdir dump_16000_wav_2)" in proc.stderr


def write_experiment_config(recipe_dir, bpemodel="data/token_list/bpe_unigram120/bpe.model"):
    """An experiment's config.yaml as ESPnet's trainer writes it: every option, relative paths, ``required``."""
    config = {
        "required": ["output_dir", "token_list"],
        "frontend": "logmel",
        "frontend_conf": {"fs": 16000},
        "token_type": "bpe",
        "token_list": ["<blank>", "<unk>", "▁a"],
        "bpemodel": bpemodel,
        "normalize": "global_mvn",
        "normalize_conf": {"stats_file": "exp/stats_16000/train/feats_stats.npz"},
        "text_encoder_conf": {"model_name_or_path": None},
    }
    path = recipe_dir / "exp/slap_x/config.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_config_from_another_recipe_is_read_where_it_was_made(tmp_path):
    """Items 1 and 2: relative paths name the files of the recipe that trained the model, never those of the
    recipe evaluating it; a config whose files are nowhere is refused, naming them."""
    trained_in = tmp_path / "egs/a/slap1"
    config = write_experiment_config(trained_in)
    for name in ("data/token_list/bpe_unigram120/bpe.model", "exp/stats_16000/train/feats_stats.npz"):
        (trained_in / name).parent.mkdir(parents=True, exist_ok=True)
        (trained_in / name).write_bytes(b"theirs")
    out = tmp_path / "here.yaml"
    assert localize_paths(config, out) == []
    localized = yaml.safe_load(out.read_text())
    assert localized["bpemodel"] == str(trained_in / "data/token_list/bpe_unigram120/bpe.model")
    assert localized["normalize_conf"]["stats_file"] == str(trained_in / "exp/stats_16000/train/feats_stats.npz")
    assert localized["token_list"] == ["<blank>", "<unk>", "▁a"] and localized["required"] == [
        "output_dir",
        "token_list",
    ]

    alone = tmp_path / "copied/config.yaml"
    alone.parent.mkdir()
    alone.write_text(config.read_text())
    assert localize_paths(alone, tmp_path / "never.yaml") == [
        "bpemodel: data/token_list/bpe_unigram120/bpe.model",
        "normalize_conf.stats_file: exp/stats_16000/train/feats_stats.npz",
    ]
    assert not (tmp_path / "never.yaml").exists()


def test_a_config_whose_files_are_nowhere_is_refused_before_stage_2(recipe, tmp_path):
    """Item 2: it used to fail in stage 7's log with FileNotFoundError for exp/stats_16000/train/feats_stats.npz."""
    config = write_experiment_config(tmp_path / "elsewhere")
    model = tmp_path / "model.pth"
    model.write_bytes(b"weights")
    proc = run_recipe(
        recipe, "--skip_train", "true", "--inference_config", str(config), "--inference_model", str(model), check=False
    )
    assert proc.returncode != 0 and not (recipe / "data").exists()
    assert f"{config} names files found neither relative to any directory above it" in proc.stderr
    assert (
        "bpemodel: data/token_list/bpe_unigram120/bpe.model; normalize_conf.stats_file: exp/stats_16000" in proc.stderr
    )


@pytest.mark.slow
def test_a_model_trained_elsewhere_is_evaluated_with_its_own_tokenizer(mini_synth, tmp_path):
    """Item 1: evaluated in a recipe with a tokenizer of the same name (trained on other captions), the captions
    were tokenised with that recipe's bpe.model and the figures were wrong (R@1 45.5 / 64.3 instead of 54.5 /
    71.4 in the issue); now the captions' embeddings are those of the recipe that trained it."""
    trained = mini_synth / "exp/slap_train_slap_tiny"
    evaluate = ["--skip_train", "true", "--inference_config", str(trained / "config.yaml")]
    evaluate += ["--inference_model", str(trained / "valid.epoch.ave.pth"), "--stage", "2", "--stop_stage", "7"]
    other = copy_recipes(tmp_path, "mini_synth") / "mini_synth" / "slap1"
    run_recipe(other, "--local_data_opts", SMALL[1] + " --seed 7", "--stop_stage", "3")  # its own bpe_unigram120
    assert (other / "data/token_list/bpe_unigram120/bpe.model").read_bytes() != (
        mini_synth / "data/token_list/bpe_unigram120/bpe.model"
    ).read_bytes()
    for name in ("wav.scp", "text"):  # the same test clips and captions in both recipes
        (other / "data/test" / name).write_text((mini_synth / "data/test" / name).read_text())
    proc = run_recipe(other, *evaluate, "--tag", "elsewhere")
    assert f"bpe tokens from {mini_synth}/data/token_list/bpe_unigram120/bpe.model" in proc.stdout
    # what the recipe that trained it embedded of the same data with the same model
    elsewhere, here = other / "exp/slap_elsewhere/embed/test", trained / "embed/test"
    same_model = [json.loads((d / "identity.json").read_text())["audio"]["model_sha256"] for d in (elsewhere, here)]
    assert same_model[0] == same_model[1]
    for name in ("text_prediction", "audio_prediction"):
        assert np.allclose(np.load(elsewhere / f"{name}.npy"), np.load(here / f"{name}.npy"), atol=1e-6), name


@pytest.mark.slow
def test_training_continues_to_a_larger_max_epoch_and_other_options_train_anew(at_22050):
    """Stage 5's marker: the same inputs with a larger max_epoch train on from the last epoch; another option
    moves the earlier training aside (nothing lost) and trains anew; a longer run is never taken as done."""
    recipe, quick = at_22050, "--num_iters_per_epoch 1 --max_epoch"
    exp = recipe / "exp/slap_train_slap_tiny"
    stage_5 = [*TINY, *AT_22050, "--stage", "5", "--stop_stage", "5", "--train_args"]
    run_recipe(recipe, *stage_5, f"{quick} 1")
    proc = run_recipe(recipe, *stage_5, f"{quick} 2")
    assert "stage 5: max_epoch 1 -> 2: training continues from its last epoch" in proc.stdout
    assert (exp / "2epoch.pth").is_file() and "1epoch results" not in (exp / "train.log").read_text()
    proc = run_recipe(recipe, *stage_5, f"{quick} 2")
    assert "stage 5: already done" in proc.stdout
    proc = run_recipe(recipe, *stage_5, f"{quick} 1 --seed 3")
    assert (
        "stage 5: training anew, changed since exp/slap_train_slap_tiny was trained: train:seed 0 -> 3, "
        "max_epoch 2 -> 1; the earlier training (and what was made from it) is moved to "
        "exp/slap_train_slap_tiny/previous.1"
    ) in proc.stdout
    assert (exp / "previous.1/2epoch.pth").is_file() and not (exp / "2epoch.pth").exists()
    assert (exp / "1epoch.pth").is_file()
