"""What the recipe reads from a config (espnet2_slap/tasks/recipe_config.py, slap_config): every shipped training
config names its sampling rate and a tokenizer the recipe can use without options repeating them (issue 24)."""

from pathlib import Path

import pytest
from conftest import REPO

from espnet2_slap.tasks.recipe_config import RecipeSettings, option_lines, parse_config

SHIPPED = sorted(p for p in (REPO / "egs").glob("*/slap1/conf/**/train_*.yaml") if not p.is_symlink())


@pytest.mark.parametrize("config", SHIPPED, ids=lambda p: str(p.relative_to(REPO / "egs")))
def test_every_shipped_config_names_its_rate_and_tokenizer(config: Path):
    settings = RecipeSettings.of(parse_config(config))
    assert settings.fs in (16000, 32000, 44100, 48000)
    assert settings.token_type in ("bpe", "hugging_face")
    if settings.token_type == "hugging_face":  # the tokenizer's directory: bpemodel, or the text encoder's own
        assert settings.bpemodel.startswith("downloads/"), settings


def test_training_options_name_what_changed_and_leave_out_what_does_not_change_the_model():
    tiny = REPO / "egs/mini_synth/slap1/conf/tuning/train_slap_tiny.yaml"
    base = option_lines(parse_config(tiny)).splitlines()
    other = option_lines(parse_config(tiny, ["--seed", "3", "--ngpu", "1", "--max_epoch", "60"])).splitlines()
    assert sorted(set(base) ^ set(other)) == ["train:seed\t0", "train:seed\t3"]
    assert 'feature:frontend_conf\t{"fmax": 8000.0, "fmin": 30.0, "fs": 16000, "hop_length": 160, "n_fft": 512, ' in (
        "\n".join(base)
    )
    assert RecipeSettings.of(parse_config(tiny, ["--frontend_conf", "fs=22050"])).fs == 22050
