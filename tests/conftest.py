"""Shared fixtures: a small synthetic corpus and a sentencepiece tokenizer trained on it, made once per session."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY_CONF = REPO / "egs" / "mini_synth" / "slap1" / "conf" / "tuning"


def run_module(module: str, *args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``python -m module args`` like a user would; on failure show its output."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *map(str, args)], cwd=cwd, capture_output=True, text=True
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{module} {' '.join(map(str, args))} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    """Kaldi data dirs {train,valid,test} of 2-s, 16-kHz synthetic clips with two captions each."""
    from espnet2_slap.utils.synth_corpus import make_corpus

    out = tmp_path_factory.mktemp("corpus")
    make_corpus(out, num_train=32, num_valid=8, num_test=8, seconds=2.0, fs=16000, seed=0)
    return out


@pytest.fixture(scope="session")
def bpe(corpus, tmp_path_factory):
    """(sentencepiece model, token list) trained on the training captions."""
    from espnet2_slap.bin.slap_tokenizer import train_sentencepiece

    return train_sentencepiece(corpus / "train" / "text", tmp_path_factory.mktemp("bpe"), vocab_size=80)
