"""The tracks an index is made of: the audio files below a directory (by extension, ``AUDIO_EXTENSIONS``), or the
lines of a Kaldi ``wav.scp``, each with what identifies its content cheaply (path, size, time of change).

A track's id is its path relative to the directory (``/`` separated), or its wav.scp id. Its path is absolute
(resolved when the list is made), so an index answers with paths that are valid from anywhere. Below a directory,
names starting with ``.`` (hidden files and folders, macOS's ``._x.wav``) are skipped. In a wav.scp, a Kaldi ark
reference (``x.ark:123``, as stage 2 may write) is identified by the ark file's size and time; a command pipe
(``... |``) is refused.
"""

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Tuple

from espnet2_slap.audio.scp import read_wav_scp
from espnet2_slap.corpora.common import AUDIO_EXTENSIONS


@dataclass(frozen=True)
class Track:
    id: str
    path: str  # an absolute file path, or an ark reference "<absolute ark path>:<offset>"
    size: int
    mtime_ns: int

    @property
    def key(self) -> Tuple[str, int, int]:
        """What a stored embedding of this track is reused by: the same file, size and time of change."""
        return (self.path, self.size, self.mtime_ns)

    def record(self) -> Dict:
        return asdict(self)


def _file_of(path: str) -> str:
    """The file whose size and time identify ``path`` (the ark file of an ark reference)."""
    return path.rsplit(":", 1)[0] if ".ark:" in path else path


def stat_track(track_id: str, path: str) -> Track:
    try:
        stat = os.stat(_file_of(path))
    except OSError as e:
        raise ValueError(f"track {track_id}: cannot read {path}: {e.strerror}") from None
    return Track(track_id, path, stat.st_size, stat.st_mtime_ns)


def directory_tracks(root: Path) -> List[Track]:
    """The audio files below ``root`` (sorted by id), hidden names skipped."""
    root = Path(root).resolve()
    tracks = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or os.path.splitext(name)[1].lower() not in AUDIO_EXTENSIONS:
                continue
            path = Path(folder) / name
            tracks.append(stat_track(path.relative_to(root).as_posix(), str(path)))
    return sorted(tracks, key=lambda t: t.id)


def scp_tracks(wav_scp: Path) -> List[Track]:
    """The lines of a wav.scp in file order; relative paths are read from the current directory, as Kaldi does."""
    tracks, seen = [], set()
    for rec in read_wav_scp(Path(wav_scp)):
        if rec.problem is not None:
            raise ValueError(f"{rec.source}: {rec.problem}")
        if rec.rec_id in seen:
            raise ValueError(f"{rec.source}: id {rec.rec_id} is given twice")
        seen.add(rec.rec_id)
        if ".ark:" in rec.path:
            ark, offset = rec.path.rsplit(":", 1)
            path = f"{os.path.abspath(ark)}:{offset}"
        else:
            path = os.path.abspath(rec.path)
        tracks.append(stat_track(rec.rec_id, path))
    return tracks


def list_tracks(source: Path) -> List[Track]:
    """The tracks of a directory tree or of a wav.scp file."""
    source = Path(source)
    if source.is_dir():
        tracks = directory_tracks(source)
    elif source.is_file():
        tracks = scp_tracks(source)
    else:
        raise ValueError(f"{source}: no such directory or wav.scp file")
    if not tracks:
        what = f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) below it" if source.is_dir() else "no lines"
        raise ValueError(f"{source}: {what}")
    return tracks
