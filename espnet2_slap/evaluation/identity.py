"""What made a set of embeddings: the SHA-256 of the model file and of its config, of the data list (wav.scp with
each audio file's size and time of change, or text) and the chunk size. ``slap_embed`` records it in
``identity.json`` (and in each saved chunk); scoring refuses embeddings whose identity is not the model's."""

import hashlib
import json
import os
from pathlib import Path
from typing import Dict, List, Optional

from espnet2.fileio.read_text import read_2columns_text


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1-MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def audio_files_sha256(wav_scp: Path) -> str:
    """SHA-256 of (path, size, time of change) of every audio file (or ark) that a wav.scp names: a source that
    stage 2 formatted anew under the same name changes it."""
    digest = hashlib.sha256()
    for value in read_2columns_text(wav_scp).values():
        path = value.rsplit(":", 1)[0] if ".ark:" in value else value
        try:
            stat = os.stat(path)
            digest.update(f"{path}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode("utf-8"))
        except OSError:
            digest.update(f"{path}\tmissing\n".encode("utf-8"))
    return digest.hexdigest()


def model_identity(train_config: Path, model_file: Path) -> Dict:
    """The model part of an embedding identity: its file, and the hashes of its weights and config (hashed once
    a run: the weights of a paper-scale model are 1.6 GB)."""
    return {
        "model_file": str(Path(model_file).resolve()),
        "model_sha256": file_sha256(model_file),
        "config_sha256": file_sha256(train_config),
    }


def embedding_identity(model: Dict, data_dir: Path, modality: str, chunk_size: int) -> Dict:
    """What the embeddings of one modality depend on: the model (``model_identity``), the data list and the
    chunk size (hashes)."""
    identity = {**model, "chunk_size": chunk_size}
    if modality == "audio":
        identity["wav.scp_sha256"] = file_sha256(data_dir / "wav.scp")
        identity["audio_files_sha256"] = audio_files_sha256(data_dir / "wav.scp")
    else:
        identity["text_sha256"] = file_sha256(data_dir / "text")
    return identity


def identity_difference(recorded: Optional[Dict], current: Dict) -> List[str]:
    """The entries (but the model file's path) in which two identities differ; all when none was recorded."""
    if recorded is None:
        return ["no identity recorded"]
    return [key for key in current if key != "model_file" and recorded.get(key) != current[key]]


def read_identity(path: Path) -> Optional[Dict]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def check_identity(
    embed_dir: Path, config: Path, model_file: Path, model_id: Dict, data_dir: Path, modalities: List[str]
) -> None:
    """ValueError unless the ``modalities``' embeddings in ``embed_dir`` were made by this model file and config
    (``model_id``) from ``data_dir`` as it is now (the identity.json slap_embed wrote)."""
    recorded = read_identity(embed_dir / "identity.json") or {}
    for modality in modalities:
        previous = recorded.get(modality)
        chunk_size = (previous or {}).get("chunk_size", 0)
        differs = identity_difference(previous, embedding_identity(model_id, data_dir, modality, chunk_size))
        if differs:
            made_by = f"made by {previous['model_file']}" if previous else "of unknown origin"
            raise ValueError(
                f"{embed_dir}: the {modality} embeddings are {made_by}, not by {model_file} with {config} on "
                f"{data_dir} as they are now ({', '.join(differs)} differ); compute them again: the recipe with "
                f"--stage 7, or python -m espnet2_slap.bin.slap_embed --train_config {config} --model_file "
                f"{model_file} --data_dir {data_dir} --output_dir {embed_dir}"
            )
