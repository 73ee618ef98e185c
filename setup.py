"""espnet2_slap: SLAP and CLAP music-text embedding models as an ESPnet2 plugin."""

import re
from pathlib import Path

from setuptools import find_packages, setup

# the one place the version is written: espnet2_slap/__init__.py (read, not imported: that would import ESPnet)
VERSION = re.search(
    r'^__version__ = "([^"]+)"$', (Path(__file__).parent / "espnet2_slap" / "__init__.py").read_text(), re.M
).group(1)

# What the plugin works with: ranges, so that it installs beside the ESPnet and torch a user has. The exact, tested
# sets are tools/constraints.txt (the quick start and CI) and tools/constraints-newest.txt (the newest releases
# within these ranges, also run by CI); tools/setup.sh installs from one of them.
install_requires = [
    # Tested: ESPnet 202511 with torch 2.11.0 and torchaudio 2.11.0 (tools/constraints.txt: the whole suite) and with
    # torch 2.12.1 and torchaudio 2.11.0 (tools/constraints-newest.txt: the `stack` tests, pytest.ini); ESPnet 202509
    # with torch 2.6.0 and torchaudio 2.6.0 (test_train_cli, test_inference, test_losses, test_encoders,
    # test_preprocessor, test_transformers_clap, test_espnet_ez, test_checkpoint_import, test_checkpoint_foreign and
    # test_htsat, -m "not slow": ESPnet's task, training, resuming, ESPnet-EZ, inference, transformers), all with
    # transformers 5.25.0 and numpy 2.4.6.
    # ESPnet. Lower bound: 202506 and every release before it require numpy<1.24 (202506's metadata; and
    # librosa==0.9.2) beside our numpy>=2, so pip refuses them. Upper bound: the newest released; ESPnet's versions
    # are dates, not semver, and a release may change the task and trainer interfaces we subclass, so a new one is
    # admitted once the suite passes on it.
    "espnet>=202509,<=202511",
    # torch and torchaudio. Lower bound: transformers 5, which pip picks, disables torch before 2.6 at import (its
    # torch>=2.6 is in its "torch" extra only, so pip does not hold it back): with torch 2.4.1 the tests above fail in
    # ESPnet's import of transformers. Upper bounds, the newest that work beside ESPnet: torch 2.13 and newer require
    # setuptools>=77.0.3, which ESPnet 202412-202511 forbid (<74). torchaudio 2.11.1 declares torch>=2.11 but does
    # not import with torch 2.11.0 or 2.12.1 (its libtorchaudio.so needs torch_exception_get_what_without_backtrace,
    # which torch 2.14.1 and 2.15.0 export), and torchaudio 2.11.0 declares no torch at all: pip cannot pair them, so
    # install the torchaudio built for your torch (tools/constraints*.txt pair them).
    "torch>=2.6,<2.13",
    "torchaudio>=2.6,<2.11.1",
    # tests/test_transformers_clap.py and tests/test_checkpoint_import.py (ClapModel import and export) pass on
    # 4.35.0, 4.35.2, 4.40.2, 4.45.2, 4.50.3, 4.57.6, 5.0.0 and 5.25.0 (the newest served). Lower bound: before
    # 4.35 save_pretrained writes pytorch_model.bin, not model.safetensors (4.34.1 fails; 4.30.2 also still saves
    # RoBERTa's position_ids). Upper bound: the next major. (5.0.0 fails at import beside kernels 0.19.1, which
    # 5.25 requires; it passes with kernels 0.10.5, in its own extra's range <0.11.)
    "transformers>=4.35,<6",
    "kaldiio",
    "numpy>=2",
    "soundfile",
    "soxr",
    "tensorboard",
    "scikit-learn",
    "matplotlib",
    "umap-learn",
    # Not ours: ESPnet imports inflect through its TTS text cleaner (espnet2.train.preprocessor), which we never
    # use. inflect 7 wraps each of its functions with typeguard's @typechecked, which rewrites and recompiles
    # them at every import: `import inflect` takes 1.9-2.5 s with inflect 7.6, 0.2-0.3 s with inflect 6.2 (this
    # 2-core machine, quiet), in every process that imports ESPnet's trainer or preprocessor (each recipe stage,
    # each job). inflect 6 does the same work with pydantic.
    "inflect<7",
    # Not ours: ESPnet-EZ (espnetez; espnet2_slap/tasks/ez.py) imports every ESPnet task, and ESPnet's SVS task
    # imports six, which espnet 202511 does not install.
    "six",
]

setup(
    name="espnet2_slap",
    version=VERSION,
    description="SLAP (Siamese Language-Audio Pretraining) and CLAP for ESPnet2",
    packages=find_packages(include=["espnet2_slap", "espnet2_slap.*"]),
    package_data={"espnet2_slap": ["py.typed"], "espnet2_slap.encoders": ["hf_configs/*.json"]},
    python_requires=">=3.11,<3.12",
    install_requires=install_requires,
    # Optional integrations (README): Hugging Face datasets as a corpus (tests/test_hf_dataset.py passes with datasets
    # 2.21.0, 3.6.0, 4.0.0 and 5.2.0), lhotse manifests to and from data dirs (tested with lhotse 1.33.0 only). The
    # test extra installs them, so that the suite runs their tests.
    extras_require={
        "hf": ["datasets>=2.21,<6"],
        "lhotse": ["lhotse>=1.33"],
        "test": [
            # pytest 9.2 keeps a test's id where pytest-xdist (3.8.0, the newest) no longer renames it: xdist's
            # --dist loadgroup (pytest.ini) then ignores every xdist_group, and each process runs the default recipe
            # (conftest.py); 9.1.1 groups them (checked on a two-process run of a marked fixture)
            "pytest<9.2",
            "pytest-xdist",
            "tokenizers",
            "datasets>=2.21,<6",
            "lhotse>=1.33",
            # drives Debian's chromium (tools/setup_test.sh) through its chromedriver in tests/test_search_serve.py
            "selenium>=4.20,<5",
            # the style tools pinned: tests/test_style.py must not change its verdict with a new release
            "black==26.10.1",
            "isort==9.0.2",
            "flake8==7.5.0",
        ],
    },
)
