"""A search index of audio tracks: their embeddings by one model, made incrementally and resumably, searched
exactly in tiles (``metrics/topk.py``).

An index directory holds:

    index.json                  what the index is: format, source (directory or wav.scp), the model (SHA-256 of
                                its weights, the file it was named by with size and time of change, the
                                embedding kind and dimension), the number of tracks, and the names of the two
                                files below; written last, by an atomic rename: it always names complete files
    embeddings.<generation>.npy (N, D) float32, L2-normalised rows (cosine = inner product), in the order of
    tracks.<generation>.jsonl   one JSON object a line: {"id", "path", "size", "mtime_ns"}
    chunks/*.npz                the embeddings of an unfinished run (each chunk with its tracks and the model's
                                hash), written to a temporary name and renamed; removed once merged
    .lock                       held (flock) while a run writes the index

A run (``build_index``) lists the tracks, reuses the embedding of every track whose path, size and time of change
are those recorded (in the index, or in a chunk of an interrupted run by the same model), embeds the others in
chunks, then writes a new generation of the two files and index.json; tracks no longer listed are dropped. An
index made by another model (weights hash) is refused unless ``rebuild``. Killed at any point (kill -9), the
index is the previous complete one and the finished chunks are reused by the next run.

Search (``SearchIndex``): the query (a caption, or an audio file or waveform) is embedded with the index's model,
normalised, and the catalogue read from a memory map in tiles; the top k of each tile are merged.
"""

import fcntl
import json
import logging
import os
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from espnet2_slap.evaluation.embed import read_wav_scp_entry
from espnet2_slap.evaluation.identity import read_identity
from espnet2_slap.metrics.topk import top_k
from espnet2_slap.queue.progress import Progress
from espnet2_slap.search.model import IndexModel, load_model, normalise, recorded_model
from espnet2_slap.search.tracks import Track, list_tracks

logger = logging.getLogger(__name__)

FORMAT = 1
INDEX_FILE = "index.json"
CHUNK_DIR = "chunks"
COPY_ROWS = 65536  # rows copied at a time into a new generation


class IndexProblem(ValueError):
    """An index that cannot be used or updated as asked; the message says why and what to do."""


@dataclass
class BuildStats:
    tracks: int = 0
    embedded: int = 0  # embedded by this run
    reused: int = 0  # taken from the index or from the chunks of an interrupted run
    resumed: int = 0  # of those, from chunks
    removed: int = 0  # in the index before, no longer listed
    unreadable: List[str] = field(default_factory=list)  # ids of tracks that could not be read (not indexed)
    written: bool = False  # a new generation was written (False: the index was up to date)


@dataclass
class Hit:
    rank: int
    id: str
    path: str
    score: float

    def to_dict(self) -> Dict:
        return asdict(self)


def answer_json(
    index: Union[str, Path], k: int, queries: Sequence[Tuple[Dict, List[Hit]]], rows: Optional[Dict[str, int]] = None
) -> Dict:
    """The JSON of a search, ``slap_search --json``'s and the page's: {"index", "k", "queries": [{"text" or "audio",
    "results": [{"rank", "id", "path", "score"}]}]}; ``rows`` (track id -> index row) adds each hit's "row"."""
    return {
        "index": str(index),
        "k": k,
        "queries": [
            {**query, "results": [{**hit.to_dict(), **({"row": rows[hit.id]} if rows else {})} for hit in hits]}
            for query, hits in queries
        ],
    }


def write_atomically(path: Path, write) -> None:
    """``write(temporary path)`` beside ``path``, then renamed over it: ``path`` is the old file or the whole new
    one, whenever the process is killed."""
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def write_bytes(data: bytes):
    return lambda tmp: tmp.write_bytes(data)


def read_tracks(path: Path) -> List[Track]:
    with open(path, encoding="utf-8") as f:
        return [Track(**json.loads(line)) for line in f if line.strip()]


def named_model(
    index_dir: Union[str, Path],
    packed: Optional[Path] = None,
    train_config: Optional[Path] = None,
    model_file: Optional[Path] = None,
    device: str = "cpu",
    batch_size: int = 16,
) -> Optional[IndexModel]:
    """The model of the options (a zip, or a config and weights), None when none is named; naming the index's own
    model file again, unchanged, skips hashing it."""
    if packed is None and model_file is None:
        return None
    meta = read_identity(Path(index_dir) / INDEX_FILE) or {}
    return load_model(packed, train_config, model_file, device, batch_size, known=meta.get("model"))


class _Lock:
    """An exclusive flock on ``<index>/.lock``; a second writer is refused."""

    def __init__(self, directory: Path):
        self.directory = directory

    def __enter__(self):
        self.fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise IndexProblem(f"{self.directory}: another slap_index run is writing this index") from None
        return self

    def __exit__(self, *exc):
        os.close(self.fd)  # closing releases the lock


def _model_name(record: Dict) -> str:
    source = record.get("source", {})
    return source.get("model") or source.get("model_file") or "an unknown model"


def _describe(record: Dict) -> str:
    """A model record in a message: its file, weights hash and preprocessing."""
    prep = record.get("preprocessing") or {}
    return (
        f"{_model_name(record)} (weights sha256 {str(record.get('sha256'))[:12]}, "
        f"{prep.get('sample_rate')} Hz, crops of {prep.get('crop_seconds')} s)"
    )


class _Cache:
    """Embeddings that can be reused, by track key: rows of the previous generation and of finished chunks."""

    def __init__(self):
        self.arrays: List[np.ndarray] = []
        self.where: Dict[Tuple, Tuple[int, int]] = {}  # key -> (array, row)
        self.from_chunks = set()

    def add(self, array: np.ndarray, tracks: Sequence[Track], chunk: bool) -> None:
        self.arrays.append(array)
        for row, track in enumerate(tracks):
            self.where[track.key] = (len(self.arrays) - 1, row)
            if chunk:
                self.from_chunks.add(track.key)
            else:
                self.from_chunks.discard(track.key)

    @property
    def dim(self) -> Optional[int]:
        return self.arrays[0].shape[1] if self.arrays else None


def _read_chunks(chunk_dir: Path, tag: str, cache: _Cache) -> int:
    """Adds the chunks made by the model ``tag`` (``IndexModel.tag``) to ``cache``; the number of chunks read."""
    count = 0
    for path in sorted(chunk_dir.glob("chunk_*.npz")):
        try:
            with np.load(path) as chunk:
                if str(chunk["model"]) != tag:
                    continue
                tracks = [Track(**t) for t in json.loads(str(chunk["tracks"]))]
                cache.add(chunk["embeddings"], tracks, chunk=True)
                count += 1
        except (OSError, ValueError, KeyError, TypeError) as e:
            logger.warning(f"{path}: not a readable chunk ({e}): ignored")
    return count


def _next_chunk_number(chunk_dir: Path) -> int:
    numbers = [
        int(m.group(1)) for p in chunk_dir.glob("chunk_*.npz") if (m := re.fullmatch(r"chunk_(\d+)\.npz", p.name))
    ]
    return max(numbers, default=-1) + 1


def _audio_input(track: Track, sample_rate: int):
    """What ``AudioTextModel.embed_audio`` takes for a track: its path, or the waveform of an ark reference."""
    return read_wav_scp_entry(track.id, track.path, sample_rate) if ".ark:" in track.path else track.path


def _embed_missing(
    todo: Sequence[Track], model: IndexModel, chunk_dir: Path, chunk_size: int, cache: _Cache, stats: BuildStats
) -> None:
    """Embeds ``todo`` in chunks, each saved (atomically) before the next is started."""
    number = _next_chunk_number(chunk_dir)
    progress = Progress("embedded", len(todo), "tracks")
    for start in range(0, len(todo), chunk_size):
        done, rows = [], []
        for track in todo[start : start + chunk_size]:
            progress.step()
            try:
                rows.append(model.embed_audio([_audio_input(track, model.model.sample_rate)])[0])
            except ValueError as e:
                logger.warning(f"track {track.id}: not indexed: {e}")
                stats.unreadable.append(track.id)
                continue
            done.append(track)
        if not done:
            continue
        array = np.stack(rows).astype(np.float32)
        records = json.dumps([t.record() for t in done])
        path = chunk_dir / f"chunk_{number:06d}.npz"

        def write_chunk(tmp: Path) -> None:
            with open(tmp, "wb") as f:  # a file object: np.savez would add ".npz" to a name
                np.savez(f, embeddings=array, tracks=np.array(records), model=np.array(model.tag))

        write_atomically(path, write_chunk)
        number += 1
        cache.add(array, done, chunk=True)
        stats.embedded += len(done)


def _write_generation(index_dir: Path, generation: int, tracks: Sequence[Track], cache: _Cache) -> Tuple[str, str]:
    """embeddings.<generation>.npy and tracks.<generation>.jsonl of ``tracks`` (all in the cache)."""
    emb_name, tracks_name = f"embeddings.{generation}.npy", f"tracks.{generation}.jsonl"
    where = np.array([cache.where[t.key] for t in tracks], dtype=np.int64).reshape(-1, 2)

    def write_embeddings(tmp: Path) -> None:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(tracks), cache.dim))
        for r0 in range(0, len(tracks), COPY_ROWS):
            block = where[r0 : r0 + COPY_ROWS]
            for a in np.unique(block[:, 0]):
                mine = np.nonzero(block[:, 0] == a)[0]
                out[r0 + mine] = cache.arrays[a][block[mine, 1]]
        out.flush()
        del out

    write_atomically(index_dir / emb_name, write_embeddings)
    lines = "".join(json.dumps(t.record()) + "\n" for t in tracks)
    write_atomically(index_dir / tracks_name, write_bytes(lines.encode("utf-8")))
    return emb_name, tracks_name


def _remove_stale(index_dir: Path, keep: Sequence[str]) -> None:
    """The generations index.json does not name, the chunks (merged) and temporary files of killed runs."""
    for path in index_dir.iterdir():
        stale_generation = (
            re.fullmatch(r"(embeddings\.\d+\.npy|tracks\.\d+\.jsonl)", path.name) and path.name not in keep
        )
        if stale_generation or (path.name.startswith(".") and path.name.endswith(".tmp")):
            path.unlink(missing_ok=True)
    chunk_dir = index_dir / CHUNK_DIR
    if chunk_dir.is_dir():
        for path in chunk_dir.iterdir():
            path.unlink(missing_ok=True)
        chunk_dir.rmdir()


def build_index(
    source: Union[str, Path],
    index_dir: Union[str, Path],
    model: Optional[IndexModel] = None,
    chunk_size: int = 64,
    rebuild: bool = False,
    device: str = "cpu",
    batch_size: int = 16,
) -> BuildStats:
    """Makes or updates the index of ``source`` (a directory tree or a wav.scp) in ``index_dir`` (see the module's
    doc). ``model``: the model to embed with; None takes the one the index records. A model other than the
    index's is refused (IndexProblem) unless ``rebuild``, which embeds every track again."""
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    with _Lock(index_dir):
        meta = read_identity(index_dir / INDEX_FILE)
        if model is None:
            if meta is None:
                raise IndexProblem(f"{index_dir}: no index yet: name the model to make it with")
            model = recorded_model(meta["model"], device, batch_size, index_dir)
        same_model = meta is not None and model.same_as(meta["model"])
        if meta is not None and not same_model and not rebuild:
            raise IndexProblem(
                f"{index_dir} holds embeddings of {_describe(meta['model'])}, not of {_describe(model.record())}: "
                "embeddings of two models cannot be searched together; rebuild it with this model (slap_index "
                "--rebuild), or give another index directory"
            )
        tracks = list_tracks(Path(source))
        stats = BuildStats(tracks=len(tracks))
        cache = _Cache()
        old_tracks: List[Track] = []
        if same_model:
            old_tracks = read_tracks(index_dir / meta["tracks"])
            cache.add(np.load(index_dir / meta["embeddings"], mmap_mode="r"), old_tracks, chunk=False)
        elif meta is not None:
            logger.warning(f"{index_dir}: rebuilt with {_model_name(model.record())}: every track is embedded again")
        chunk_dir = index_dir / CHUNK_DIR
        chunk_dir.mkdir(exist_ok=True)
        if _read_chunks(chunk_dir, model.tag, cache):
            logger.info(f"{index_dir}: resuming an unfinished run (its chunks in {chunk_dir})")
        todo = [t for t in tracks if t.key not in cache.where]
        stats.reused = len(tracks) - len(todo)
        stats.resumed = sum(t.key in cache.from_chunks for t in tracks)
        stats.removed = len({t.id for t in old_tracks} - {t.id for t in tracks})
        _embed_missing(todo, model, chunk_dir, chunk_size, cache, stats)
        indexed = [t for t in tracks if t.key in cache.where]
        if not indexed:
            raise IndexProblem(f"{source}: no track could be read ({len(stats.unreadable)} unreadable)")
        if same_model and indexed == old_tracks:
            _remove_stale(index_dir, [meta["embeddings"], meta["tracks"]])
            logger.info(f"{index_dir}: up to date ({len(indexed)} tracks)")
            return stats
        generation = (meta or {}).get("generation", 0) + 1
        emb_name, tracks_name = _write_generation(index_dir, generation, indexed, cache)
        kind = meta["model"]["kind"] if same_model and not model.loaded else model.kind
        new_meta = {
            "format": FORMAT,
            "source": str(Path(source).resolve()),
            "model": {**model.record(), "kind": kind, "dim": cache.dim},
            "count": len(indexed),
            "generation": generation,
            "embeddings": emb_name,
            "tracks": tracks_name,
            "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        write_atomically(index_dir / INDEX_FILE, write_bytes(json.dumps(new_meta, indent=2).encode("utf-8")))
        _remove_stale(index_dir, [emb_name, tracks_name])
        stats.written = True
        logger.info(
            f"{index_dir}: {len(indexed)} tracks: {stats.embedded} embedded, {stats.reused} reused "
            f"({stats.resumed} from an unfinished run), {stats.removed} dropped, {len(stats.unreadable)} unreadable"
        )
        return stats


class SearchIndex:
    """A finished index, opened for search: ``SearchIndex.open(dir).search_text(model, "a calm piano piece", 10)``
    with ``model = index.load_model()`` (the model the index records), or any IndexModel of the same weights."""

    def __init__(self, directory: Path, meta: Dict, tracks: List[Track], embeddings: np.ndarray):
        self.directory, self.meta, self.tracks, self.embeddings = directory, meta, tracks, embeddings

    @classmethod
    def open(cls, directory: Union[str, Path]) -> "SearchIndex":
        directory = Path(directory)
        meta = read_identity(directory / INDEX_FILE)
        if meta is None:
            pending = len(list((directory / CHUNK_DIR).glob("chunk_*.npz")))
            hint = f" (an unfinished run left {pending} chunk(s): run slap_index again to finish it)" if pending else ""
            raise IndexProblem(f"{directory}: not an index: no readable {INDEX_FILE}{hint}")
        if meta.get("format") != FORMAT:
            raise IndexProblem(f"{directory}: index format {meta.get('format')}, this code reads {FORMAT}")
        tracks = read_tracks(directory / meta["tracks"])
        embeddings = np.load(directory / meta["embeddings"], mmap_mode="r")
        if embeddings.shape != (len(tracks), meta["model"]["dim"]):
            raise IndexProblem(
                f"{directory}: {meta['embeddings']} has shape {embeddings.shape}, not {len(tracks)} tracks"
            )
        return cls(directory, meta, tracks, embeddings)

    def __len__(self) -> int:
        return len(self.tracks)

    def load_model(self, device: str = "cpu", batch_size: int = 16) -> IndexModel:
        """The model that made the index, from the files it names."""
        return recorded_model(self.meta["model"], device, batch_size, self.directory)

    def check_model(self, model: IndexModel) -> None:
        if not model.same_as(self.meta["model"]):
            raise IndexProblem(
                f"{self.directory} holds embeddings of {_describe(self.meta['model'])}, not of "
                f"{_describe(model.record())}: query it with its own model"
            )

    def search_vectors(self, queries: np.ndarray, k: int = 10) -> List[List[Hit]]:
        """The top ``k`` tracks of each query embedding ((Q, D) or (D,), normalised here), best first."""
        queries = normalise(np.atleast_2d(queries))
        scores, rows = top_k(self.embeddings, queries, k)
        return [
            [Hit(rank + 1, self.tracks[r].id, self.tracks[r].path, float(s)) for rank, (s, r) in enumerate(zip(ss, rr))]
            for ss, rr in zip(scores, rows)
        ]

    def search_text(self, model: IndexModel, text: Union[str, Sequence[str]], k: int = 10):
        """The top ``k`` tracks of a caption (a list of hits), or of each of a list of captions (a list of lists)."""
        self.check_model(model)
        hits = self.search_vectors(model.embed_text([text] if isinstance(text, str) else list(text)), k)
        return hits[0] if isinstance(text, str) else hits

    def search_audio(self, model: IndexModel, audio, k: int = 10) -> List[Hit]:
        """The top ``k`` tracks of an audio file (or a waveform at the model's rate)."""
        self.check_model(model)
        return self.search_vectors(model.embed_audio([audio]), k)[0]
