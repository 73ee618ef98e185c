"""Reading a Kaldi ``wav.scp`` (``<recording id> <audio file path>`` per line): the list of a data dir's audio
that stage 2 (``audio.dump``) formats and training (the ``lazy_sound`` type, ``train.lazy_sound``) reads.

Every line is kept, in file order, with where it is (``<wav.scp>:<line>``); a line with no path, or a command pipe
(``... |``, which is not read here: give a file), carries its problem (``BadUtterance``) for the caller to skip
or refuse. Repeated ids are left to the caller too.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from espnet2_slap.audio.io import BadUtterance


@dataclass
class Recording:
    """A ``wav.scp`` line, with its problem if it has one."""

    rec_id: str
    path: str
    source: str  # "<wav.scp>:<line>"
    problem: Optional[BadUtterance] = None


def read_wav_scp(wav_scp: Path) -> List[Recording]:
    """The lines of a wav.scp; one without a path or with a command pipe gets its problem."""
    recordings = []
    with open(wav_scp, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.strip().split(maxsplit=1)
            if not fields:
                continue
            rec = Recording(fields[0], fields[1] if len(fields) == 2 else "", f"{wav_scp}:{lineno}")
            if not rec.path:
                rec.problem = BadUtterance("malformed line", "no audio path")
            elif rec.path.endswith("|"):
                rec.problem = BadUtterance("unsupported entry", "command pipes are not read, give a file")
            recordings.append(rec)
    return recordings
