"""Shared fixtures: a small synthetic corpus and a sentencepiece tokenizer trained on it, and the default recipe
trained once, made once per session."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY_CONF = REPO / "egs" / "mini_synth" / "slap1" / "conf" / "tuning"


# Fixtures that run the default recipe (minutes): any test that uses one is slow, whatever else it does.
RECIPE_FIXTURES = {"mini_synth", "packed_model"}


# The tests that exercise what depends on the installed releases, each kind once: ESPnet's task and trainer (train,
# average, resume), ESPnet-EZ, the models and front ends, DDP, checkpoints and transformers' ClapModel, audio
# reading, datasets and lhotse, the scorers. tools/venv-newest (the newest releases within setup.py's ranges) runs
# them (README's test command, .ci/run); the rest are recipes and jobs (which run in the venv running pytest too,
# through SLAP_VENV, but cost minutes) and the repository's own checks (style, layout, READMEs, downloads,
# schedulers).
STACK_MODULES = {
    "test_checkpoint_foreign",
    "test_checkpoint_import",
    "test_compare",
    "test_ddp_clap",
    "test_ema",
    "test_encoders",
    "test_espnet_ez",
    "test_format_audio",
    "test_fresh_batches",
    "test_gap_both_spaces",
    "test_grad_accum",
    "test_hf_dataset",
    "test_htsat",
    "test_inference",
    "test_lazy_sound",
    "test_lhotse_manifests",
    "test_losses",
    "test_metrics_device",
    "test_modality_gap",
    "test_pcm16_wav",
    "test_preprocessor",
    "test_pretrained_configs",
    "test_probe",
    "test_retrieval_metrics",
    "test_search_index",
    "test_slap_learning_stats",
    "test_train_cli",
    "test_train_warnings",
    "test_transformers_clap",
    "test_zeroshot_metrics",
}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's, which reads the xdist_group marks given here
def pytest_collection_modifyitems(config, items):
    missing = sorted(name for name in STACK_MODULES if not (REPO / "tests" / f"{name}.py").exists())
    if missing:
        raise pytest.UsageError(f"conftest.py: STACK_MODULES names no test module {', '.join(missing)}")
    for item in items:
        if item.path.stem in STACK_MODULES:
            item.add_marker(pytest.mark.stack)
        if RECIPE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
            # one xdist process runs them all (pytest.ini: --dist loadgroup), so the recipe runs once, not once a
            # process (about 110 s each on 2 cores)
            item.add_marker(pytest.mark.xdist_group("default_recipe"))


def run_module(module: str, *args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``python -m module args`` like a user would; on failure show its output."""
    proc = subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=cwd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{module} {' '.join(map(str, args))} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
        )
    return proc


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    """Kaldi data dirs {train,valid,test} of 2-s, 16-kHz synthetic clips with two captions each."""
    from espnet2_slap.corpora.synth import make_corpus

    out = tmp_path_factory.mktemp("corpus")
    make_corpus(out, num_train=32, num_valid=8, num_test=8, seconds=2.0, fs=16000, seed=0)
    return out


@pytest.fixture(scope="session")
def bpe(corpus, tmp_path_factory):
    """(sentencepiece model, token list) trained on the training captions."""
    from espnet2_slap.train.tokenizer import train_sentencepiece

    return train_sentencepiece(corpus / "train" / "text", tmp_path_factory.mktemp("bpe"), vocab_size=80)


def tiny_args(tmp_path: Path, model: str = "slap", *extra: str):
    """Parsed SLAPTask arguments for the tiny config, with a 50-token vocabulary and no normalisation."""
    from espnet2_slap.tasks.slap import SLAPTask

    tokens = tmp_path / "tokens.txt"
    tokens.write_text("<unk>\n" + "".join(f"tok{i}\n" for i in range(49)))
    return SLAPTask.get_parser().parse_args(
        [
            "--config",
            str(TINY_CONF / f"train_{model}_tiny.yaml"),
            "--normalize",
            "none",
            "--token_list",
            str(tokens),
            "--output_dir",
            str(tmp_path / "exp"),
            *extra,
        ]
    )


def tiny_model(tmp_path: Path, model: str = "slap", *extra: str, dropout: bool = True):
    """(args, model) built by SLAPTask.build_model from the tiny config; dropout=False zeroes all dropout."""
    import torch

    from espnet2_slap.tasks.slap import SLAPTask

    torch.manual_seed(0)
    args = tiny_args(tmp_path, model, *extra)
    if not dropout:
        args.text_encoder_conf.update(dropout_rate=0.0, positional_dropout_rate=0.0)
    return args, SLAPTask.build_model(args)


def random_batch(batch_size: int, seed: int = 0, seconds: float = 1.5, fs: int = 16000, vocab: int = 50):
    """A collated batch like ESPnet's: waveforms (B, S) and captions of 13 to 19 ids padded with -1."""
    import torch
    from random_batch import random_batch as make

    return make(batch_size, int(seconds * fs), 19, vocab, torch.Generator().manual_seed(seed))


def split_batch(batch: dict, parts) -> list:
    """Cut a collated batch into micro-batches, ``parts`` equal ones or one per size in a list, each re-padded to
    its own longest caption."""
    total = batch["speech"].size(0)
    sizes = [total // parts] * parts if isinstance(parts, int) else list(parts)
    micro, start = [], 0
    for size in sizes:
        b = {k: v[start : start + size] for k, v in batch.items()}
        b["text"] = b["text"][:, : int(b["text_lengths"].max())]
        micro.append(b)
        start += size
    return micro


MINI_SYNTH_OPTS = ["--local_data_opts", "--num_train 48 --num_valid 16 --num_test 16 --seconds 2"]


def copy_recipes(dest: Path, *names: str) -> Path:
    """A copy of egs/TEMPLATE and the recipes ``names`` (sources only, no data/dump/exp) under ``dest``/egs."""
    egs = dest / "egs"
    ignore = shutil.ignore_patterns("data", "dump", "exp")
    for name in ("TEMPLATE", *names):
        shutil.copytree(REPO / "egs" / name, egs / name, symlinks=True, ignore=ignore)
    return egs


def run_recipe(
    recipe: Path, *args: str, env: dict = None, check: bool = True, script: str = "./run.sh"
) -> subprocess.CompletedProcess:
    """``./run.sh args`` (or another ``script`` of the recipe) in ``recipe`` with the venv that runs the tests
    (SLAP_VENV, which path.sh activates; ``env`` added); on failure show its output."""
    venv = {"SLAP_VENV": sys.prefix, "PATH": f"{sys.prefix}/bin:{os.environ['PATH']}"}  # the venv running the tests
    env = {**os.environ, "MAIN_ROOT": str(REPO), **venv, **(env or {})}
    proc = subprocess.run([script, *args], cwd=recipe, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


@pytest.fixture(scope="session")
def mini_synth(tmp_path_factory) -> Path:
    """The default recipe, egs/mini_synth/slap1, run once from stage 1 to 8 (2 epochs) in a copy of egs/: its
    directory, with first_run.log and the packed model exp/slap_train_slap_tiny/packed_model.zip that the corpus
    recipes' tests evaluate. Tests that change it (test_recipe.py) leave that model alone."""
    recipe = copy_recipes(tmp_path_factory.mktemp("mini_synth"), "mini_synth") / "mini_synth" / "slap1"
    proc = run_recipe(recipe, *MINI_SYNTH_OPTS, "--train_args", "--max_epoch 2")
    recipe.joinpath("first_run.log").write_text(proc.stdout + proc.stderr)
    return recipe


@pytest.fixture(scope="session")
def packed_model(mini_synth) -> Path:
    """The packed model of the default recipe's run (stage 9): a zip with its config, weights and tokenizer."""
    return mini_synth / "exp" / "slap_train_slap_tiny" / "packed_model.zip"
