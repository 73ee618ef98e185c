"""The model of an index: a packed model (the zip of stage 9) or a training's config.yaml and ``*.pth``, with
what identifies it: the SHA-256 of its weights file (the same weights packed or not are the same model) and the
preprocessing of audio its config sets (sample rate, crop length: the windows of a long track).

The file the user names (the zip, or the ``*.pth``) is recorded with its size and time of change: naming it
again unchanged takes the recorded hash instead of reading a paper-scale model's 1.6 GB again. The weights are
read at the first embedding (a rerun with nothing new to embed never reads them).
"""

import os
import tempfile
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np

from espnet2_slap.checkpoints.packing import unpack_model
from espnet2_slap.evaluation.identity import file_sha256
from espnet2_slap.inference import AudioTextModel, load_config
from espnet2_slap.metrics.cosine import unit_rows
from espnet2_slap.tasks.slap import SLAPTask


def normalise(rows: np.ndarray) -> np.ndarray:
    """(N, D) rows scaled to unit L2 norm in float32, as the index stores them; a zero row stays zero."""
    return unit_rows(rows, np.float32)


def file_record(path: Path) -> Dict:
    stat = os.stat(path)
    return {"path": str(Path(path).resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


class IndexModel:
    """An AudioTextModel (built at its first use) with the identity of its weights. ``source`` is what names it
    ({"model": zip} or {"train_config": ..., "model_file": ...}, absolute) and ``file`` the record of the file
    hashed or named (path, size, time of change)."""

    def __init__(
        self,
        source: Dict,
        file: Dict,
        sha256: str,
        preprocessing: Dict,
        build,
        tmp: Optional[tempfile.TemporaryDirectory],
    ):
        self.source, self.file, self.sha256, self.preprocessing = source, file, sha256, preprocessing
        self._build, self._model, self._tmp = build, None, tmp  # tmp: the unpacked zip, kept while the model lives

    @property
    def model(self) -> AudioTextModel:
        if self._model is None:
            self._model = self._build()
        return self._model

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def kind(self) -> str:
        """The embedding retrieval uses (SLAP: prediction, CLAP: projection)."""
        return self.model.kinds[-1]

    def embed_audio(self, audio: Sequence) -> np.ndarray:
        """(N, D) L2-normalised embeddings of paths or waveforms."""
        return normalise(self.model.embed_audio(audio)[self.kind])

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """(N, D) L2-normalised embeddings of captions."""
        return normalise(self.model.embed_text(texts)[self.kind])

    def record(self) -> Dict:
        return {"sha256": self.sha256, "preprocessing": self.preprocessing, "source": self.source, "file": self.file}

    @property
    def tag(self) -> str:
        """The identity in one string (what a chunk of an unfinished run records)."""
        return f"{self.sha256}:{self.preprocessing['sample_rate']}:{self.preprocessing['crop_seconds']}"

    def same_as(self, record: Dict) -> bool:
        """Whether an index's model record is this model (weights and preprocessing)."""
        return record.get("sha256") == self.sha256 and record.get("preprocessing") == self.preprocessing


def load_model(
    packed: Optional[Path] = None,
    train_config: Optional[Path] = None,
    model_file: Optional[Path] = None,
    device: str = "cpu",
    batch_size: int = 16,
    known: Optional[Dict] = None,
) -> IndexModel:
    """The model of a zip (``packed``) or of a config and weights file. ``known``: a model record an index holds;
    when its file is the one named here, with the same size and time of change, its hash is taken."""
    if (packed is None) == (model_file is None) or (model_file is None) != (train_config is None):
        raise ValueError("give a packed model (a zip), or a train config and a model file")
    named = Path(packed if packed is not None else model_file)
    if not named.is_file():
        raise ValueError(f"{named}: no such model file")
    if train_config is not None and not Path(train_config).is_file():
        raise ValueError(f"{train_config}: no such config file")
    file = file_record(named)
    same_file = known is not None and known.get("file") == file
    tmp = None
    if packed is not None:
        source = {"model": file["path"]}
        tmp = tempfile.TemporaryDirectory(prefix="slap_model_")
        config, weights = unpack_model(packed, tmp.name)
    else:
        source = {"train_config": str(Path(train_config).resolve()), "model_file": file["path"]}
        config, weights = Path(train_config), Path(model_file)
    sha256 = known["sha256"] if same_file else file_sha256(weights)
    args = load_config(config)
    preprocessing = {
        "sample_rate": SLAPTask.sample_rate(args),
        "crop_seconds": (args.preprocessor_conf or {}).get("crop_seconds"),
    }

    def build() -> AudioTextModel:
        return AudioTextModel.from_pretrained(config, weights, device, batch_size)

    return IndexModel(source, file, sha256, preprocessing, build, tmp)


def recorded_model(record: Dict, device: str = "cpu", batch_size: int = 16, index: Optional[Path] = None) -> IndexModel:
    """The model an index records, from the files it names (they must still be there)."""
    source = record["source"]
    files = {"packed": source.get("model"), "train_config": source.get("train_config")}
    files["model_file"] = source.get("model_file")
    try:
        return load_model(
            **{k: Path(v) for k, v in files.items() if v}, device=device, batch_size=batch_size, known=record
        )
    except (ValueError, OSError) as e:
        raise ValueError(
            f"{index or 'the index'}: the model it was made with cannot be loaded ({e}): name it (--model ZIP, or "
            "--train_config and --model_file)"
        ) from None
