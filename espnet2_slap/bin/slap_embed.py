#!/usr/bin/env python3
"""Audio and caption embeddings of a Kaldi data dir with a trained SLAP/CLAP model.

    python -m espnet2_slap.bin.slap_embed --train_config exp/slap/config.yaml \\
        --model_file exp/slap/valid.r1_t2a.ave.pth --data_dir data/test --output_dir exp/slap/embed/test

Writes to --output_dir, for each modality (audio from wav.scp, text from text) and each kind (representation,
projection and, for SLAP, prediction):
  <modality>_<kind>.npy   (N, D) float32, rows in the order of
  <modality>_<kind>.ids   one id per line
  <modality>_<kind>.ark/.scp   the same as Kaldi matrices (kaldiio), one (1, D) row per id
and ``text2audio`` ("<caption id> <audio id>"): caption ids are ``<utt id>-cap<i>``, one per caption of a text
line (several captions split at the preprocessor's delimiter). Work is saved every --chunk_size clips under
<output_dir>/chunks; a rerun skips finished chunks, so an interrupted run resumes. Long audio: see
espnet2_slap/inference.py (mean over training-length windows).

The embeddings are tied to what made them: ``identity.json`` (and ``chunks/<modality>.identity.json``) holds the
SHA-256 of the model file and of the config, of the data list (wav.scp, with each audio file's size and time of
change, or text) and the chunk size. Chunks of another model, config, data or chunk size are never reused: they
are deleted and computed again (a warning says so), and slap_results refuses embeddings whose identity is not
that of the model it is asked to score.
"""

import argparse
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from espnet2.fileio.read_text import read_2columns_text
from tqdm import tqdm

from espnet2_slap.audio.io import pcm16_to_float
from espnet2_slap.inference import AudioTextModel
from espnet2_slap.utils.cli import start_logging


def read_wav_scp_entry(uid: str, value: str, sample_rate: int):
    """A wav.scp value -> waveform: a Kaldi ark reference (``x.ark:123``, 16-bit PCM) or an audio file path."""
    if ".ark:" in value:
        import kaldiio

        loaded = kaldiio.load_mat(value)
        rate, wave = loaded if isinstance(loaded, tuple) else (sample_rate, loaded)
        if rate != sample_rate:
            raise ValueError(f"utterance {uid}: {value} is at {rate} Hz, the model at {sample_rate} Hz")
        return pcm16_to_float(wave)
    if not Path(value).is_file():
        raise ValueError(f"utterance {uid}: audio file {value} does not exist")
    return value


def caption_items(text_file: Path, preprocessor) -> List[Tuple[str, str, str]]:
    """[(caption id, audio id, caption)] of a Kaldi text file, captions split as in training
    (``SLAPPreprocessor.captions``: an empty one is an error naming its utterance)."""
    text = read_2columns_text(text_file)
    return [
        (f"{uid}-cap{i}", uid, caption)
        for uid, line in text.items()
        for i, caption in enumerate(preprocessor.captions(uid, line))
    ]


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


def embed_in_chunks(
    name: str, ids: Sequence[str], inputs: Sequence, embed, chunk_dir: Path, chunk_size: int, identity: Dict
) -> Dict[str, np.ndarray]:
    """{kind: (N, D)} of ``embed(inputs)``, computed chunk by chunk and saved, so a rerun skips finished ones;
    finished chunks of another ``identity`` (model, config, data, chunk size) are deleted first."""
    chunk_dir.mkdir(parents=True, exist_ok=True)
    identity_file = chunk_dir / f"{name}.identity.json"
    old_chunks = sorted(chunk_dir.glob(f"{name}_*.npz"))
    differs = identity_difference(read_identity(identity_file), identity)
    if old_chunks and differs:
        logging.warning(
            f"{name}: the {len(old_chunks)} finished chunk(s) in {chunk_dir} were not made from "
            f"{identity['model_file']} with this config, data and chunk size ({', '.join(differs)} differ): "
            "deleted, computing them again"
        )
        for path in old_chunks:
            path.unlink()
    identity_file.write_text(json.dumps(identity, indent=2), encoding="utf-8")
    parts = []
    for start in tqdm(range(0, len(ids), chunk_size), desc=name, unit="chunk"):
        path = chunk_dir / f"{name}_{start // chunk_size:06d}.npz"
        if not path.exists():
            emb = embed(inputs[start : start + chunk_size])
            np.savez(path.with_suffix(".tmp.npz"), **emb)
            path.with_suffix(".tmp.npz").rename(path)
        with np.load(path) as chunk:
            parts.append({kind: chunk[kind] for kind in chunk.files})
    return {kind: np.concatenate([p[kind] for p in parts]) for kind in parts[0]}


def write_embeddings(out_dir: Path, name: str, ids: Sequence[str], embeddings: Dict[str, np.ndarray]) -> None:
    import kaldiio

    for kind, matrix in embeddings.items():
        stem = out_dir / f"{name}_{kind}"
        np.save(f"{stem}.npy", matrix.astype(np.float32))
        Path(f"{stem}.ids").write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
        with kaldiio.WriteHelper(f"ark,scp:{stem}.ark,{stem}.scp") as writer:
            for uid, row in zip(ids, matrix):
                writer(uid, row[None].astype(np.float32))
    logging.info(f"{name}: {len(ids)} embeddings of kinds {list(embeddings)} in {out_dir}")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_config", type=Path, required=True, help="config.yaml written by training")
    parser.add_argument("--model_file", type=Path, required=True, help="*.pth, e.g. the n-best average")
    parser.add_argument("--data_dir", type=Path, required=True, help="Kaldi data dir with wav.scp and/or text")
    parser.add_argument("--output_dir", type=Path, required=True)
    parser.add_argument("--modalities", nargs="+", default=["audio", "text"], choices=["audio", "text"])
    parser.add_argument("--batch_size", type=int, default=16, help="windows or captions per forward")
    parser.add_argument("--chunk_size", type=int, default=256, help="items between saved partial results")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    return parser


def main(cmd=None):
    start_logging("espnet2_slap.bin.slap_embed", cmd)
    args = get_parser().parse_args(cmd)
    model = AudioTextModel.from_pretrained(args.train_config, args.model_file, args.device, args.batch_size)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    chunk_dir = args.output_dir / "chunks"
    model_id = model_identity(args.train_config, args.model_file)
    identities = {
        modality: embedding_identity(model_id, args.data_dir, modality, args.chunk_size) for modality in args.modalities
    }
    identity_file = args.output_dir / "identity.json"
    kept = {k: v for k, v in (read_identity(identity_file) or {}).items() if k not in args.modalities}
    identity_file.unlink(missing_ok=True)  # written again once every output is complete
    if "audio" in args.modalities:
        scp = read_2columns_text(args.data_dir / "wav.scp")
        ids = list(scp)
        inputs = [read_wav_scp_entry(uid, scp[uid], model.sample_rate) for uid in ids]
        write_embeddings(
            args.output_dir,
            "audio",
            ids,
            embed_in_chunks("audio", ids, inputs, model.embed_audio, chunk_dir, args.chunk_size, identities["audio"]),
        )
    if "text" in args.modalities:
        items = caption_items(args.data_dir / "text", model.preprocessor)
        ids = [caption_id for caption_id, _, _ in items]
        write_embeddings(
            args.output_dir,
            "text",
            ids,
            embed_in_chunks(
                "text", ids, [c for _, _, c in items], model.embed_text, chunk_dir, args.chunk_size, identities["text"]
            ),
        )
        (args.output_dir / "text2audio").write_text("".join(f"{c} {a}\n" for c, a, _ in items), encoding="utf-8")
    identity_file.write_text(json.dumps({**kept, **identities}, indent=2), encoding="utf-8")
    logging.info(f"embeddings of {args.model_file} in {args.output_dir} (their identity: {identity_file})")


if __name__ == "__main__":
    main()
