"""MusicCaps clips from YouTube with ``yt-dlp``: one job's share of the CSV's rows.

``fetch_clips(csv, audio_dir, job, num_jobs, found_in=())`` takes the rows of ``musiccaps-public.csv`` whose ytid
falls to job ``job`` of ``num_jobs`` (1-based, as ``${train_cmd} JOB=1:N``; by a CRC-32 of the ytid) and, for each
ytid with no audio file yet anywhere below ``audio_dir`` or the directories ``found_in`` (``<ytid>.{wav,flac,mp3,
ogg}``, as the preparation finds them: a re-run fetches only what is missing), runs ``yt-dlp -x --audio-format wav
--download-sections *<start_s>-<end_s>`` into ``<audio_dir>.tmp`` and moves the clip into ``audio_dir`` when it is
whole. ``missing_clips(csv, audio_dirs)`` names the clips that are nowhere below ``audio_dirs`` (what a fetch would
ask for). A video that cannot be fetched (many are gone) is written to
``unavailable`` (``ytid<TAB>CSV line<TAB>yt-dlp's last message``) and counted, never a stop. yt-dlp (and the
ffmpeg it cuts with) is not a dependency of this package: ``pip install yt-dlp``.
"""

import logging
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple

from espnet2_slap.corpora.common import AUDIO_EXTENSIONS, PrepError, Report, read_csv_rows, stable_bucket

logger = logging.getLogger(__name__)
WATCH_URL = "https://www.youtube.com/watch?v={}"


def present_ytids(audio_dirs: Sequence[Path]) -> Set[str]:
    """The ytids with an audio file (``<ytid>.{wav,flac,mp3,ogg}``) anywhere below one of ``audio_dirs``, as
    ``espnet2_slap.corpora.musiccaps`` finds them; a directory that does not exist holds none."""
    return {
        path.stem
        for audio_dir in audio_dirs
        if audio_dir.is_dir()
        for path in audio_dir.rglob("*")
        if path.suffix.lower() in AUDIO_EXTENSIONS and path.is_file()
    }


def missing_clips(csv: Path, audio_dirs: Sequence[Path]) -> Tuple[List[str], int]:
    """(the ytids of the CSV's clips with no audio file below any of ``audio_dirs``, in CSV order, the number of
    clips): the rows with a ytid and readable start_s/end_s (the others cannot be fetched), a ytid counted once."""
    present = present_ytids(audio_dirs)
    ytids: Dict[str, None] = {}
    for row in read_csv_rows(csv, ["ytid", "start_s", "end_s"], Report("musiccaps_missing")):
        ytid = row.values["ytid"].strip()
        try:
            float(row.values["start_s"]), float(row.values["end_s"])
        except ValueError:
            continue
        if ytid:
            ytids[ytid] = None
    return [ytid for ytid in ytids if ytid not in present], len(ytids)


def ytdlp_command(ytdlp: str, ytid: str, start: float, end: float, out_dir: Path) -> List[str]:
    return [
        ytdlp,
        "--quiet",
        "--no-warnings",
        "--no-playlist",
        "-x",
        "--audio-format",
        "wav",
        "--download-sections",
        f"*{start:g}-{end:g}",
        "-o",
        str(out_dir / f"{ytid}.%(ext)s"),
        "--",
        WATCH_URL.format(ytid),
    ]


def fetch_one(ytdlp: str, ytid: str, start: float, end: float, audio_dir: Path, timeout: float) -> Optional[str]:
    """Fetch one clip into ``audio_dir``; None when done, else why not."""
    tmp = audio_dir.with_name(audio_dir.name + ".tmp")  # beside audio_dir: nothing half-made is found below it
    tmp.mkdir(parents=True, exist_ok=True)
    for stale in tmp.glob(f"{ytid}.*"):
        stale.unlink()
    try:
        proc = subprocess.run(
            ytdlp_command(ytdlp, ytid, start, end, tmp), capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return f"yt-dlp took more than {timeout:g} s"
    clip = tmp / f"{ytid}.wav"
    if proc.returncode != 0 or not clip.is_file() or clip.stat().st_size == 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        return lines[-1] if lines else f"yt-dlp exited with {proc.returncode} and no wav"
    clip.rename(audio_dir / clip.name)
    return None


def fetch_clips(
    csv: Path,
    audio_dir: Path,
    job: int = 1,
    num_jobs: int = 1,
    unavailable: Optional[Path] = None,
    ytdlp: str = "yt-dlp",
    timeout: float = 300.0,
    found_in: Sequence[Path] = (),
) -> Dict[str, int]:
    """Counts of this job's clips: fetched, already there (below ``audio_dir`` or ``found_in``), unavailable (and
    malformed rows)."""
    if not 1 <= job <= num_jobs:
        raise PrepError(f"--job {job} is not in 1..{num_jobs}")
    if shutil.which(ytdlp) is None:
        raise PrepError(
            f"{ytdlp} is not installed: pip install 'yt-dlp[default]' (it needs ffmpeg too: apt-get install ffmpeg)"
        )
    report = Report("musiccaps_fetch")
    rows = list(read_csv_rows(csv, ["ytid", "start_s", "end_s"], report))
    counts = {"fetched": 0, "already there": 0, "unavailable": 0, "malformed rows": report.counts("skipped").total()}
    failed: List[Tuple[str, str, str]] = []
    audio_dir.mkdir(parents=True, exist_ok=True)
    present = present_ytids([audio_dir, *found_in])
    for row in rows:
        ytid = row.values["ytid"].strip()
        if stable_bucket(ytid, num_jobs) != job - 1:
            continue  # another job's (by ytid: a ytid on two rows is one job's)
        if ytid in present:
            counts["already there"] += 1
            continue
        try:
            start, end = float(row.values["start_s"]), float(row.values["end_s"])
        except ValueError as e:
            logger.warning(f"{row.where}: {ytid}: malformed start_s/end_s ({e}); skipped")
            counts["malformed rows"] += 1
            continue
        why = fetch_one(ytdlp, ytid, start, end, audio_dir, timeout)
        if why is None:
            counts["fetched"] += 1
            present.add(ytid)
        else:
            counts["unavailable"] += 1
            failed.append((ytid, row.where, why))
            logger.warning(f"{row.where}: {ytid}: unavailable: {why}")
    if unavailable is not None:
        unavailable.parent.mkdir(parents=True, exist_ok=True)
        unavailable.write_text("".join(f"{y}\t{w}\t{m.replace(chr(9), ' ')}\n" for y, w, m in failed), encoding="utf-8")
    logger.info(f"job {job} of {num_jobs}: " + ", ".join(f"{n} {what}" for what, n in counts.items()))
    return counts
