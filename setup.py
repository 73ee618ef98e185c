"""espnet2_slap: SLAP and CLAP music-text embedding models as an ESPnet2 plugin."""

from setuptools import find_packages, setup

# The project's stack (README "Quick start"). torch/torchaudio are pinned; tools/setup.sh installs them first.
install_requires = [
    "torch==2.11.0",
    "torchaudio==2.11.0",
    "espnet==202511",
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
    version="0.1.0",
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
            "pytest",
            "pytest-xdist",
            "tokenizers",
            "datasets>=2.21,<6",
            "lhotse>=1.33",
            # the style tools pinned: tests/test_style.py must not change its verdict with a new release
            "black==26.10.1",
            "isort==9.0.2",
            "flake8==7.5.0",
        ],
    },
)
