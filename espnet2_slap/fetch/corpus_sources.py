"""Where each public corpus is published, and fetching it into the layout its preparation reads.

``fetch_corpus(name, root)`` fetches the corpus ``name`` (``CORPORA``) into ``root`` (the recipe's db.sh path)
from its publisher's official release: files are resumed, verified (the MD5s and sizes a Zenodo record
lists, or a checksum pinned here) and unpacked; what is in place is skipped; what failed is listed. With
``mirror`` (``--mirror``, ``SLAP_MIRROR``: ``http://host:port``) every URL's scheme and host are replaced by
it, the paths kept (a local copy of the publishers' sites; the Hub files follow ``HF_ENDPOINT``). With the
offline switch (``SLAP_OFFLINE=1``, ``HF_HUB_OFFLINE=1``) nothing is fetched and the missing files are named.

    song_describer  Zenodo record 10072001: song_describer.csv, audio.zip -> audio/<00-99>/<id>.2min.mp3
    musiccaps       the Hub dataset google/MusicCaps: musiccaps-public.csv (clips: espnet2_slap.fetch.youtube)
    gtzan           genres.tar.gz of the Marsyas site (SHA-256 as torchaudio pins it) -> genres/<genre>/*.au
    mtat            MIRG (City, University of London): annotations_final.csv, mp3.zip.001-003 -> mp3/<0-f>/
    openmic         Zenodo record 1432913: openmic-2018-v1.0.0.tgz -> openmic-2018.npz, partitions/, audio/
"""

import json
import logging
import os
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from espnet2_slap.fetch.download import DownloadError, Expected, fetch, offline_mode, unpack, unpacking_dir
from espnet2_slap.fetch.hub import hub_fetch

logger = logging.getLogger(__name__)
ZENODO = "https://zenodo.org"
MTAT = "https://mirg.city.ac.uk/datasets/magnatagatune"


@dataclass(frozen=True)
class Source:
    """One published file: fetched as ``name`` into the corpus root, from ``url`` (or the Zenodo record's file
    ``name``, or the Hub repository ``hub``), or joined from ``parts``; an archive is unpacked into ``into``
    (``strip``: its top directory, when it has one) and kept."""

    name: str
    url: str = ""
    zenodo: str = ""
    hub: str = ""
    parts: Tuple[str, ...] = ()
    expected: Expected = Expected()
    into: Optional[str] = None
    strip: str = ""


@dataclass(frozen=True)
class Corpus:
    sources: Tuple[Source, ...]
    needs: Tuple[str, ...]  # what the preparation reads below the root


CORPORA: Dict[str, Corpus] = {
    "song_describer": Corpus(
        (
            Source("song_describer.csv", zenodo="10072001"),
            Source("audio.zip", zenodo="10072001", into="audio", strip="audio"),
        ),
        ("song_describer.csv", "audio"),
    ),
    "musiccaps": Corpus(
        (Source("musiccaps-public.csv", hub="google/MusicCaps"),),
        ("musiccaps-public.csv",),
    ),
    "gtzan": Corpus(
        (
            Source(
                "genres.tar.gz",
                url="http://opihi.cs.uvic.ca/sound/genres.tar.gz",
                expected=Expected(sha256="24347e0223d2ba798e0a558c4c172d9d4a19c00bb7963fe055d183dadb4ef2c6"),
                into=".",
            ),
        ),
        ("genres",),
    ),
    "mtat": Corpus(
        (
            Source("annotations_final.csv", url=f"{MTAT}/annotations_final.csv"),
            Source("mp3.zip", parts=tuple(f"{MTAT}/mp3.zip.00{i}" for i in (1, 2, 3)), into="mp3"),
        ),
        ("annotations_final.csv", "mp3"),
    ),
    "openmic": Corpus(
        (Source("openmic-2018-v1.0.0.tgz", zenodo="1432913", into=".", strip="openmic-2018"),),
        ("openmic-2018.npz", "partitions", "audio"),
    ),
}


def mirrored(url: str, mirror: Optional[str]) -> str:
    """``url`` with its scheme and host replaced by those of ``mirror`` (its path kept)."""
    if not mirror:
        return url
    parts, base = urllib.parse.urlsplit(url), urllib.parse.urlsplit(mirror)
    return urllib.parse.urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + parts.path, parts.query, ""))


def zenodo_files(record: str, mirror: Optional[str]) -> Dict[str, Tuple[str, Expected]]:
    """{file name: (URL, size and MD5)} of a Zenodo record, as its API lists them."""
    api = mirrored(f"{ZENODO}/api/records/{record}", mirror)
    try:
        with urllib.request.urlopen(api, timeout=60) as response:
            listing = json.load(response)
    except (OSError, ValueError) as e:
        raise DownloadError(f"{api}: cannot read the record's file list ({type(e).__name__}: {e})") from None
    files = {}
    for entry in listing.get("files", []):
        algorithm, _, digest = str(entry.get("checksum", "")).partition(":")
        expected = Expected(size=entry.get("size"), **({algorithm: digest} if algorithm in ("md5", "sha256") else {}))
        url = mirrored(f"{ZENODO}/api/records/{record}/files/{entry['key']}/content", mirror)
        files[entry["key"]] = (url, expected)
    return files


def missing(name: str, root: Path) -> List[str]:
    """What the preparation of corpus ``name`` reads below ``root`` and is not there (or not wholly unpacked)."""
    absent = [need for need in CORPORA[name].needs if not (root / need).exists()]
    unfinished = [s.name for s in CORPORA[name].sources if s.into and unpacking_dir(root / s.into).exists()]
    return absent + [f"{n} (its unpacking was cut short)" for n in unfinished]


def fetch_source(source: Source, root: Path, mirror: Optional[str], zenodo: Dict[str, Dict], **kw) -> None:
    dest = root / source.name
    if source.into is not None and (root / source.into / f".unpacked.{source.name}").is_file():
        return  # unpacked before (the archive may have been removed since)
    if source.hub:
        hub_fetch(source.hub, [source.name], root, repo_type="dataset", offline=kw.get("offline"))
    elif source.parts:
        parts = [fetch(mirrored(u, mirror), root / Path(u).name, **kw) for u in source.parts]
        if not dest.is_file():
            logger.info(f"joining {', '.join(p.name for p in parts)} into {dest}")
            with open(dest.with_name(dest.name + ".part"), "wb") as out:
                for part in parts:
                    with open(part, "rb") as f:
                        while block := f.read(1 << 20):
                            out.write(block)
            dest.with_name(dest.name + ".part").rename(dest)
    elif source.zenodo:
        if source.zenodo not in zenodo:
            zenodo[source.zenodo] = zenodo_files(source.zenodo, mirror)
        if source.name not in zenodo[source.zenodo]:
            raise DownloadError(f"Zenodo record {source.zenodo} has no file {source.name}")
        url, expected = zenodo[source.zenodo][source.name]
        fetch(url, dest, expected, **kw)
    else:
        fetch(mirrored(source.url, mirror), dest, source.expected, **kw)
    if source.into is None:
        return
    try:
        unpack(dest, root / source.into, source.strip)
    except DownloadError as e:
        if not source.parts:
            raise
        dest.unlink()
        names = ", ".join(Path(u).name for u in source.parts)
        raise DownloadError(f"{e}. No checksums are published for {names}: remove them and run again") from None
    if source.parts:
        dest.unlink()  # the parts are kept; the joined copy is not needed again


def fetch_corpus(name: str, root: Path, mirror: Optional[str] = None, offline: Optional[bool] = None, **kw) -> None:
    """Fetch corpus ``name`` into ``root``; each failure is logged, and all of them raised together."""
    mirror = os.environ.get("SLAP_MIRROR") if mirror is None else mirror
    offline = offline_mode() if offline is None else offline
    root = Path(root)
    absent = missing(name, root)
    if not absent:
        logger.info(f"{name}: {root} has {', '.join(CORPORA[name].needs)} already: not fetched")
        return
    if offline:
        raise DownloadError(
            f"{name}: {root} lacks {', '.join(absent)} and the offline switch is on (SLAP_OFFLINE / "
            f"HF_HUB_OFFLINE): fetch the corpus on a machine with internet access and copy {root} here"
        )
    root.mkdir(parents=True, exist_ok=True)
    failed, zenodo = [], {}
    for source in CORPORA[name].sources:
        try:
            fetch_source(source, root, mirror, zenodo, offline=offline, **kw)
        except DownloadError as e:
            logger.error(str(e))
            failed.append(f"{source.name}: {e}")
    if failed:
        raise DownloadError(
            f"{name}: {len(failed)} of {len(CORPORA[name].sources)} files failed:\n  " + "\n  ".join(failed)
        )
    logger.info(f"{name}: all in {root}")
