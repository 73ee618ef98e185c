"""The pretrained files the paper-scale configs start from, where they are published, and which a config needs.

``PRETRAINED`` maps the names the configs use below ``downloads/`` to their source: ``roberta-base`` (weights,
config and tokenizer files of the Hub model FacebookAI/roberta-base), LAION-CLAP's music release
``music_audioset_epoch_15_esc_90.14.pt`` (the Hub model lukewys/laion_clap), ``htsat_base.pt`` (a link to that
release: its HTS-AT base audio branch, what ``train_slap_pretrained.yaml`` and ``train_clap_pretrained.yaml``
load) and HTS-AT's own AudioSet checkpoint ``HTSAT_AudioSet_Saved_1.ckpt`` (HTS-AT tiny at 32 kHz, what
``train_slap_htsat_tiny_pretrained.yaml`` loads), which its authors publish on Google Drive only: it is named
with its page, to fetch by hand. ``config_needs(config)`` lists the start files a training config names
(``init_checkpoint``, ``model_name_or_path``, ``model_conf: init: path``, ``bpemodel``) that are not there.
"""

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import yaml

from espnet2_slap.fetch.download import DownloadError
from espnet2_slap.fetch.hub import hub_fetch

logger = logging.getLogger(__name__)
HTSAT_PAGE = "https://github.com/RetroCirce/HTS-Audio-Transformer (README: the AudioSet checkpoint on Google Drive)"


@dataclass(frozen=True)
class Pretrained:
    """A Hub repository's ``files`` (into a directory of the name when ``directory``), a link to another entry,
    or a file to fetch by hand from ``page``."""

    repo: str = ""
    files: Tuple[str, ...] = ()
    directory: bool = False
    link_to: str = ""
    page: str = ""


PRETRAINED = {
    "roberta-base": Pretrained(
        "FacebookAI/roberta-base",
        ("config.json", "model.safetensors", "vocab.json", "merges.txt", "tokenizer.json"),
        directory=True,
    ),
    "music_audioset_epoch_15_esc_90.14.pt": Pretrained("lukewys/laion_clap", ("music_audioset_epoch_15_esc_90.14.pt",)),
    "htsat_base.pt": Pretrained(link_to="music_audioset_epoch_15_esc_90.14.pt"),
    "HTSAT_AudioSet_Saved_1.ckpt": Pretrained(page=HTSAT_PAGE),
}
DEFAULT = ("roberta-base", "music_audioset_epoch_15_esc_90.14.pt", "htsat_base.pt")


def fetch_pretrained(name: str, downloads: Path, offline: Optional[bool] = None) -> Path:
    """``downloads/<name>``, fetched (or linked) unless it is there."""
    entry, dest = PRETRAINED[name], Path(downloads) / name
    if entry.link_to:
        target = fetch_pretrained(entry.link_to, downloads, offline)
        if not dest.exists():
            if dest.is_symlink():
                dest.unlink()
            os.symlink(target.name, dest)
            logger.info(f"{dest} -> {target.name}")
        return dest
    if entry.page:
        if not dest.is_file():
            raise DownloadError(f"{dest} is missing: it is published only on {entry.page}; fetch it by hand to {dest}")
        return dest
    hub_fetch(entry.repo, entry.files, dest if entry.directory else dest.parent, offline=offline)
    return dest


def config_needs(config: Path) -> List[Tuple[str, Optional[str]]]:
    """(path, name in PRETRAINED or None) of the start files ``config`` names that do not exist."""
    with open(config, encoding="utf-8") as f:
        conf = yaml.safe_load(f) or {}
    paths: Sequence[object] = [
        (conf.get("audio_encoder_conf") or {}).get("init_checkpoint"),
        (conf.get("text_encoder_conf") or {}).get("model_name_or_path"),
        ((conf.get("model_conf") or {}).get("init") or {}).get("path"),
        conf.get("bpemodel"),
    ]
    absent = []
    for path in paths:
        if isinstance(path, str) and path and not Path(path).exists():
            name = Path(path).name
            absent.append((path, name if name in PRETRAINED and Path(path).parent.name == "downloads" else None))
    return absent
