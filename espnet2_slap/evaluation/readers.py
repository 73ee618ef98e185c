"""Readers of what scoring reads, each checking its input and naming the file and line of a problem.

An embedding file is ``<dir>/<name>.npy`` (float32, (N, D)) with ``<dir>/<name>.ids`` (N ids, one a line, in row
order). Kaldi-style lists: ``text2audio`` ("<text_id> <audio_id>"), label files ("<audio_id> <label>", or with
several labels, an id alone meaning no positive label), known-label files (OpenMIC's mask: "<audio_id> <label>
..." the labels known for a clip), id lists (the first field of each line), class lists (one class a line).

What they read goes to the scorers as arrays (``CaptionedEmbeddings``, ``LabelledClips``); the scorers read no file.
An ``EmbeddingFiles`` reads each embedding file once for every task that uses it (stage 8: one a test set).
"""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

import numpy as np

logger = logging.getLogger(__name__)


def load_embeddings(emb_dir: Path, name: str) -> Tuple[List[str], np.ndarray]:
    """``emb_dir/<name>.ids`` and ``.npy`` -> (ids, (N, D) float32), checking counts and duplicate ids."""
    npy, ids_file = emb_dir / f"{name}.npy", emb_dir / f"{name}.ids"
    for path in (npy, ids_file):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
    ids = [line.strip() for line in ids_file.read_text(encoding="utf-8").splitlines()]
    matrix = np.load(npy, mmap_mode="r")
    if matrix.ndim != 2 or matrix.shape[0] == 0:
        raise ValueError(f"{npy}: expected a non-empty (N, D) matrix, got shape {matrix.shape}")
    if len(ids) != matrix.shape[0]:
        raise ValueError(f"{ids_file}: {len(ids)} ids but {npy} has {matrix.shape[0]} rows")
    seen: Dict[str, int] = {}
    for lineno, utt in enumerate(ids, 1):
        if not utt:
            raise ValueError(f"{ids_file}:{lineno}: empty id")
        if utt in seen:
            raise ValueError(f"{ids_file}:{lineno}: id {utt!r} already on line {seen[utt]}")
        seen[utt] = lineno
    return ids, np.asarray(matrix, dtype=np.float32)


Loader = Callable[[Path, str], Tuple[List[str], np.ndarray]]  # (emb_dir, name) -> (ids, (N, D)): load_embeddings


class EmbeddingFiles:
    """A ``Loader`` that reads each embedding file (``load_embeddings``) at its first use and keeps it: stage 8 makes
    one a test set, so that every task of the set uses the same arrays and no file is read twice."""

    def __init__(self):
        self.read: Dict[Path, Tuple[List[str], np.ndarray]] = {}

    def __call__(self, emb_dir: Path, name: str) -> Tuple[List[str], np.ndarray]:
        if emb_dir / name not in self.read:
            self.read[emb_dir / name] = load_embeddings(emb_dir, name)
        return self.read[emb_dir / name]


def read_kaldi(path: Path, min_fields: int = 2) -> List[Tuple[int, str, List[str]]]:
    """'<id> <field> ...' lines -> [(line number, id, fields)], non-empty, each with at least ``min_fields``."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if len(fields) < min_fields:
            raise ValueError(f"{path}:{lineno}: expected '<id> <value> ...', got {line!r}")
        rows.append((lineno, fields[0], fields[1:]))
    if not rows:
        raise ValueError(f"{path}: empty file")
    return rows


def read_ids(path: Path) -> List[str]:
    """The ids (first fields) of a Kaldi list, e.g. a split's wav.scp or an id list."""
    return [utt for _, utt, _ in read_kaldi(path, min_fields=1)]


def row_of(ids: List[str]) -> Dict[str, int]:
    return {utt: i for i, utt in enumerate(ids)}


def lookup(index: Dict[str, int], utt: str, where: str, what: str) -> int:
    if utt not in index:
        raise ValueError(f"{where}: id {utt!r} has no {what}")
    return index[utt]


class UnmappedTextIds(ValueError):
    """Text ids that are not audio ids, with no ``text2audio`` to map them to clips."""


def text_audio_rows(text_ids: List[str], audio_ids: List[str], text2audio: Optional[Path]) -> np.ndarray:
    """(T,) audio row of each text row, from the mapping file or by equal ids (UnmappedTextIds when a text id is
    no audio id)."""
    audio_row = row_of(audio_ids)
    if text2audio is None:
        unmapped = [t for t in text_ids if t not in audio_row]
        if unmapped:
            raise UnmappedTextIds(
                f"{len(unmapped)} of {len(text_ids)} text ids are not audio ids (the first: {unmapped[0]!r}), "
                "and no text2audio maps captions to clips"
            )
        return np.array([audio_row[t] for t in text_ids])
    mapping = {}
    for lineno, text_id, fields in read_kaldi(text2audio):
        mapping[text_id] = lookup(audio_row, fields[0], f"{text2audio}:{lineno}", "audio embedding")
    return np.array([lookup(mapping, t, f"text embedding id {t}", f"line in {text2audio}") for t in text_ids])


class CaptionedEmbeddings(NamedTuple):
    """One kind's embeddings of a set with captions, as its files hold them: ``audio_<kind>`` (A ids, (A, D)),
    ``text_<kind>`` (T ids, (T, D)) and ``text_audio``, the (T,) audio row of each caption."""

    audio_ids: List[str]
    audio: np.ndarray
    text_ids: List[str]
    text: np.ndarray
    text_audio: np.ndarray


def read_captioned(
    emb_dir: Path, kinds: List[str], text2audio: Optional[Path], load: Loader = load_embeddings
) -> Dict[str, CaptionedEmbeddings]:
    """{kind: its ``audio_<kind>`` and ``text_<kind>``, with each caption's audio row (``text_audio_rows``)}, in the
    order of ``kinds``; ``text2audio`` is read once for kinds of the same ids (slap_embed writes them so)."""
    result: Dict[str, CaptionedEmbeddings] = {}
    for kind in kinds:
        audio_ids, audio = load(emb_dir, f"audio_{kind}")
        text_ids, text = load(emb_dir, f"text_{kind}")
        same = [e for e in result.values() if e.audio_ids == audio_ids and e.text_ids == text_ids]
        rows = same[0].text_audio if same else text_audio_rows(text_ids, audio_ids, text2audio)
        result[kind] = CaptionedEmbeddings(audio_ids, audio, text_ids, text, rows)
    return result


def class_list(labels: Path, classes: Optional[Path]) -> List[str]:
    """The class names of ``classes`` (one a line), or the sorted labels seen in the label file."""
    if classes is not None:
        if not classes.is_file():
            raise FileNotFoundError(f"{classes}: no such file (the class list)")
        names = [line.strip() for line in classes.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not names:
            raise ValueError(f"{classes}: empty file")
        return names
    return sorted({label for _, _, fields in read_kaldi(labels, min_fields=1) for label in fields})


def label_targets(
    path: Path, classes: List[str], audio_ids: List[str], multi_label: bool
) -> Tuple[np.ndarray, np.ndarray]:
    """-> (embedding rows (M,), targets: (M,) class indices, or (M, C) {0,1} with ``multi_label``, where a line
    with the id alone is a clip with no positive label). Every id must have an embedding."""
    audio_row, class_index = row_of(audio_ids), {c: i for i, c in enumerate(classes)}
    rows, targets = [], []
    for lineno, utt, fields in read_kaldi(path, min_fields=1):
        where = f"{path}:{lineno}"
        rows.append(lookup(audio_row, utt, where, "audio embedding"))
        if not multi_label and len(fields) != 1:
            raise ValueError(f"{where}: {len(fields)} labels for {utt}; score it as multi-label")
        indices = [lookup(class_index, label, where, "entry in the class list") for label in fields]
        targets.append(indices[0] if not multi_label else np.isin(np.arange(len(classes)), indices).astype(int))
    return np.array(rows), np.array(targets)


@dataclass
class LabelledClips:
    """The labelled clips of an embedding file: ``ids`` (M), ``features`` (M, D), ``targets`` (M,) class indices
    (single-label) or (M, C) {0,1}, ``known`` (M, C) bool or None (all known), ``unlabelled`` the number of
    embedded clips that the label file does not list (not scored)."""

    ids: List[str]
    features: np.ndarray
    targets: np.ndarray
    known: Optional[np.ndarray]
    unlabelled: int = 0

    def subset(self, wanted: List[str], where: str) -> "LabelledClips":
        """The clips ``wanted`` (ids, e.g. a split's list read from ``where``), in that order."""
        index = row_of(self.ids)
        rows = np.array([lookup(index, utt, where, "labelled embedding") for utt in wanted])
        known = None if self.known is None else self.known[rows]
        return LabelledClips(wanted, self.features[rows], self.targets[rows], known)


def read_labelled(
    emb_dir: Path,
    name: str,
    labels: Path,
    classes: List[str],
    multi_label: bool,
    known: Optional[Path] = None,
    load: Loader = load_embeddings,
) -> LabelledClips:
    """The clips of embedding file ``name`` that the label file lists (every line's id must be embedded; embedded
    clips it does not list are logged with their count); ``known`` (multi-label only) must list every one."""
    if known is not None and not multi_label:
        raise ValueError(f"{known}: a known-label mask needs multi-label scoring")
    audio_ids, matrix = load(emb_dir, name)
    rows, targets = label_targets(labels, classes, audio_ids, multi_label)
    mask = None
    if known is not None:
        known_rows, known_targets = label_targets(known, classes, audio_ids, multi_label=True)
        by_row = dict(zip(known_rows.tolist(), known_targets))
        mask = np.stack(
            [lookup(by_row, r, f"audio id {audio_ids[r]} of {labels}", f"line in {known}") for r in rows.tolist()]
        ).astype(bool)
    unlabelled = len(audio_ids) - len(set(rows.tolist()))
    if unlabelled:
        logger.warning(
            f"{labels}: {unlabelled} of the {len(audio_ids)} clips in {emb_dir / name} have no line: not scored"
        )
    return LabelledClips([audio_ids[r] for r in rows], matrix[rows], targets, mask, unlabelled)
