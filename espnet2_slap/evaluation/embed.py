"""Embeddings of a Kaldi data dir (stage 7): audio from wav.scp, captions from text, for each kind after the
encoders (representation, projection and, for SLAP, prediction), and the zero-shot prompts of a class list.

Work is saved in chunks of ``chunk_size`` items under ``<output_dir>/chunks``; each chunk records the identity of
what made it (identity.py), so a rerun reuses only the chunks of the same model, config, data and chunk size and
an interrupted run resumes. Jobs share a data dir by chunks (``job`` of ``nj``: a contiguous block of them); the
call without ``job`` computes what is missing and writes the outputs:
  <modality>_<kind>.npy   (N, D) float32, rows in the order of
  <modality>_<kind>.ids   one id per line
  <modality>_<kind>.ark/.scp   the same as Kaldi matrices (kaldiio), one (1, D) row per id
  text2audio              "<caption id> <audio id>"; caption ids are ``<utt id>-cap<i>``, one per caption of a
                          text line (split at the preprocessor's delimiter, as in training)
  identity.json           the identity of each modality's embeddings
"""

import hashlib
import json
import logging
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from espnet2.fileio.read_text import read_2columns_text

from espnet2_slap.audio.io import pcm16_to_float
from espnet2_slap.evaluation.identity import embedding_identity, model_identity, read_identity
from espnet2_slap.evaluation.prompt_embeddings import embed_prompts, prompt_ids
from espnet2_slap.queue.progress import Progress

logger = logging.getLogger(__name__)

Embed = Callable[[Sequence], Dict[str, np.ndarray]]


def read_wav_scp_entry(uid: str, value: str, sample_rate: int):
    """A wav.scp value -> what ``AudioTextModel.embed_audio`` takes: the waveform of a Kaldi ark reference
    (``x.ark:123``, 16-bit PCM at the model's rate), or the audio file's path (read and resampled there)."""
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


def job_chunks(num_chunks: int, job: Optional[int], nj: int) -> range:
    """The chunk indices of job ``job`` (1-based) of ``nj``: a contiguous block; all of them without a job."""
    if job is None:
        return range(num_chunks)
    if not 1 <= job <= nj:
        raise ValueError(f"--job {job} is not in 1..{nj}")
    return range((job - 1) * num_chunks // nj, job * num_chunks // nj)


def identity_tag(identity: Dict) -> str:
    """A chunk's record of what made it: the SHA-256 of its identity (the model file's path left out)."""
    kept = {k: v for k, v in identity.items() if k != "model_file"}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode("utf-8")).hexdigest()


def read_chunk(path: Path, tag: str) -> Optional[Dict[str, np.ndarray]]:
    """{kind: (n, D)} of a saved chunk made by ``tag``; None when there is none, or one made by another."""
    try:
        with np.load(path) as chunk:
            if "identity" not in chunk.files or str(chunk["identity"]) != tag:
                return None
            return {kind: chunk[kind] for kind in chunk.files if kind != "identity"}
    except (OSError, ValueError):
        return None


def embed_in_chunks(
    name: str,
    inputs: Sequence,
    embed: Embed,
    chunk_dir: Path,
    chunk_size: int,
    identity: Dict,
    chunks: Optional[range] = None,
) -> Dict[str, np.ndarray]:
    """{kind: (N, D)} of ``embed(inputs)``, chunk by chunk; a chunk saved before by the same ``identity`` is
    reused, one of another model, config, data or chunk size computed again (a warning counts them). With
    ``chunks`` (a job's share), only those are computed and {} is returned."""
    chunk_dir.mkdir(parents=True, exist_ok=True)
    tag = identity_tag(identity)
    num_chunks = (len(inputs) + chunk_size - 1) // chunk_size
    wanted = range(num_chunks) if chunks is None else chunks
    parts, stale = {}, 0
    progress = Progress(f"embedded ({name})", len(wanted), "chunks")
    for index in wanted:
        progress.step()
        path = chunk_dir / f"{name}_{index:06d}.npz"
        emb = read_chunk(path, tag)
        if emb is None:
            stale += path.exists()
            emb = embed(inputs[index * chunk_size : (index + 1) * chunk_size])
            tmp = path.with_name(f".{path.stem}.tmp.npz")
            np.savez(tmp, identity=np.array(tag), **emb)
            tmp.rename(path)
        parts[index] = emb
    if stale:
        logger.warning(
            f"{name}: {stale} finished chunk(s) in {chunk_dir} were not made from {identity['model_file']} with this "
            "config, data and chunk size: computed again"
        )
    if chunks is not None:
        return {}
    return {kind: np.concatenate([parts[i][kind] for i in range(num_chunks)]) for kind in parts[0]}


def write_embeddings(out_dir: Path, name: str, ids: Sequence[str], embeddings: Dict[str, np.ndarray]) -> None:
    """``<name>_<kind>.npy/.ids/.ark/.scp`` of each kind."""
    import kaldiio

    for kind, matrix in embeddings.items():
        stem = out_dir / f"{name}_{kind}"
        np.save(f"{stem}.npy", matrix.astype(np.float32))
        Path(f"{stem}.ids").write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
        with kaldiio.WriteHelper(f"ark,scp:{stem}.ark,{stem}.scp") as writer:
            for uid, row in zip(ids, matrix):
                writer(uid, row[None].astype(np.float32))
    logger.info(f"{name}: {len(ids)} embeddings of kinds {list(embeddings)} in {out_dir}")


def embed_data_dir(
    model,
    train_config: Path,
    model_file: Path,
    data_dir: Path,
    output_dir: Path,
    modalities: Sequence[str] = ("audio", "text"),
    chunk_size: int = 256,
    job: Optional[int] = None,
    nj: int = 1,
) -> None:
    """Embeds ``data_dir`` into ``output_dir`` (see the module's doc). ``model`` is an AudioTextModel whose weights
    may be loaded lazily (``inference.LazyModel``): a call that finds every chunk done never loads them."""
    output_dir.mkdir(parents=True, exist_ok=True)
    chunk_dir = output_dir / "chunks"
    model_id = model_identity(train_config, model_file)
    identities = {m: embedding_identity(model_id, data_dir, m, chunk_size) for m in modalities}
    items: Dict[str, Tuple[List[str], List]] = {}
    if "audio" in modalities:
        scp = read_2columns_text(data_dir / "wav.scp")
        items["audio"] = (list(scp), [read_wav_scp_entry(uid, scp[uid], model.sample_rate) for uid in scp])
    if "text" in modalities:
        captions = caption_items(data_dir / "text", model.preprocessor)
        items["text"] = ([c for c, _, _ in captions], [text for _, _, text in captions])
    embedders = {"audio": lambda batch: model.embed_audio(batch), "text": lambda batch: model.embed_text(batch)}
    if job is not None:
        for modality, (ids, inputs) in items.items():
            num_chunks = (len(ids) + chunk_size - 1) // chunk_size
            share = job_chunks(num_chunks, job, nj)
            logger.info(
                f"job {job} of {nj}: {modality}: chunks {share.start} to {share.stop - 1} of {num_chunks} "
                f"({len(ids)} items, {chunk_size} a chunk)"
                if share
                else f"job {job} of {nj}: {modality}: nothing to do ({len(ids)} items make {num_chunks} chunk(s) of "
                f"{chunk_size}: a smaller --chunk_size shares them among more jobs)"
            )
            embed_in_chunks(modality, inputs, embedders[modality], chunk_dir, chunk_size, identities[modality], share)
        return
    identity_file = output_dir / "identity.json"
    kept = {k: v for k, v in (read_identity(identity_file) or {}).items() if k not in modalities}
    identity_file.unlink(missing_ok=True)  # written again once every output is complete
    for modality, (ids, inputs) in items.items():
        embeddings = embed_in_chunks(modality, inputs, embedders[modality], chunk_dir, chunk_size, identities[modality])
        write_embeddings(output_dir, modality, ids, embeddings)
    if "text" in items:
        (output_dir / "text2audio").write_text("".join(f"{c} {a}\n" for c, a, _ in captions), encoding="utf-8")
    identity_file.write_text(json.dumps({**kept, **identities}, indent=2), encoding="utf-8")
    logger.info(f"embeddings of {model_file} in {output_dir} (their identity: {identity_file})")


def embed_prompt_file(model, classes: Sequence[str], output_dir: Path) -> None:
    """``prompt_<kind>.npy/.ids`` of the paper's prompts with each class (ids ``<prompt_index>:<class>``), as
    ``slap_score zeroshot --prompt_dir`` reads them."""
    output_dir.mkdir(parents=True, exist_ok=True)
    per_prompt = list(embed_prompts(model.embed_text, classes).values())
    embeddings = {kind: np.concatenate([p[kind] for p in per_prompt]) for kind in per_prompt[0]}
    write_embeddings(output_dir, "prompt", prompt_ids(classes), embeddings)
