"""The ``lazy_sound`` data type: a ``wav.scp`` whose audio is read by the preprocessor, crop only.

ESPnet's ``sound`` type decodes every file whole in the loader, before the preprocessor knows which crop it
will take: a 10-s crop of a 4-min track then costs the decode of 4 minutes. ``lazy_sound`` loads an
:class:`AudioFileRef` (path and length) instead, and :class:`~espnet2_slap.train.preprocessor.SLAPPreprocessor`
draws the crop offset from that length and reads just those samples (a soundfile seek; exact for wav, flac, ogg
and mp3 on libsndfile >= 1.1; 16-bit wav by one ``pread`` of the crop's bytes, ``audio.io.read_pcm16_wav``).
Lengths come from ``utt2num_samples`` beside the ``wav.scp`` (stage 2 writes it), so no extra decode is needed
(and a file cut short since then is caught); without that file, from each file's header when it is read.

ESPnet builds its loaders from the module-level table ``espnet2.train.dataset.DATA_TYPES`` and offers no other
way to add a type; :func:`register_lazy_sound` adds one entry to it (SLAPTask does at import). A loader may hand
the preprocessor a tuple, which :class:`AudioFileRef` is, so ESPnet's dataset passes it through unchanged.
Reading in the preprocessor also lets a bad file be skipped there instead of failing inside ESPnet's loader.

    --train_data_path_and_name_and_type dump/raw/train/wav.scp,speech,lazy_sound
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Dict, Iterator, NamedTuple, Optional

import espnet2.train.dataset
from espnet2.fileio.read_text import read_2columns_text

from espnet2_slap.audio.scp import read_wav_scp

DATA_TYPE = "lazy_sound"


class AudioFileRef(NamedTuple):
    """An audio file to read later, and its length in samples when known (None: read it from the header)."""

    path: str
    num_samples: Optional[int]


def read_num_samples(path: Path) -> Dict[str, int]:
    """``<id> <samples>`` lines (``utt2num_samples``) -> {id: samples}; a malformed line is an error naming it."""
    counts = {}
    for uid, value in read_2columns_text(path).items():
        if not value.isdigit():
            raise ValueError(f"{path}: utterance {uid} has {value!r} where a number of samples is expected")
        counts[uid] = int(value)
    return counts


def num_samples_path(wav_scp: Path) -> Path:
    """Where the lengths of a wav.scp's utterances are: ``<dir>/utt2num_samples``, or for a shard of ESPnet's
    split_scps (``<dir>/wav.scp/split.N``, read with --multiple_iterator), ``<dir>/utt2num_samples/split.N``."""
    if wav_scp.parent.name == "wav.scp":
        return wav_scp.parent.parent / "utt2num_samples" / wav_scp.name
    return wav_scp.parent / "utt2num_samples"


class LazySoundScpReader(Mapping):
    """{utterance id: AudioFileRef} of a ``wav.scp`` (one file per line), lengths from its ``utt2num_samples``
    (:func:`num_samples_path`) when there is one."""

    def __init__(self, wav_scp: str):
        self.refs: Dict[str, AudioFileRef] = {}
        num_samples_file = num_samples_path(Path(wav_scp))
        num_samples = read_num_samples(num_samples_file) if num_samples_file.exists() else {}
        for rec in read_wav_scp(Path(wav_scp)):
            if rec.problem is not None:
                raise ValueError(f"{rec.source}: {rec.problem}")
            if rec.rec_id in self.refs:
                raise ValueError(f"{rec.source}: utterance {rec.rec_id} appears twice")
            if num_samples and rec.rec_id not in num_samples:
                raise ValueError(f"{rec.source}: utterance {rec.rec_id} is missing from {num_samples_file}")
            self.refs[rec.rec_id] = AudioFileRef(rec.path, num_samples.get(rec.rec_id))

    def __getitem__(self, uid: str) -> AudioFileRef:
        return self.refs[uid]

    def __iter__(self) -> Iterator[str]:
        return iter(self.refs)

    def __len__(self) -> int:
        return len(self.refs)


def register_lazy_sound() -> None:
    """Make ``lazy_sound`` a data type of ESPnet's datasets (idempotent)."""
    espnet2.train.dataset.DATA_TYPES.setdefault(
        DATA_TYPE,
        dict(
            func=LazySoundScpReader,
            kwargs=[],
            help="Audio files read by the preprocessor, only the crop it takes (espnet2_slap):\n\n"
            "   utterance_id_a a.flac\n"
            "   utterance_id_b b.mp3\n"
            "   ...\n\n"
            "Lengths come from utt2num_samples beside wav.scp when it exists.",
        ),
    )
