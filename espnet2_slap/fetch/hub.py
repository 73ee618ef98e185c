"""Files of Hugging Face Hub repositories into a local directory, through ``huggingface_hub``.

``hub_fetch(repo_id, files, dest)`` fetches each of ``files`` that ``dest`` lacks with ``hf_hub_download``
(``local_dir=dest``: the repository's layout, no cache links), so ``HF_ENDPOINT`` (a mirror), ``HF_TOKEN`` and
the Hub's own resume and checks apply. With the offline switch (``SLAP_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``)
nothing is fetched: the files are only looked for, and the missing ones named.
"""

import logging
from pathlib import Path
from typing import List, Optional, Sequence

from espnet2_slap.fetch.download import DownloadError, offline_mode

logger = logging.getLogger(__name__)


def hub_fetch(
    repo_id: str,
    files: Sequence[str],
    dest: Path,
    repo_type: Optional[str] = None,
    revision: Optional[str] = None,
    offline: Optional[bool] = None,
) -> List[Path]:
    """The paths ``dest/<file>`` of ``files`` of the Hub repository ``repo_id``, fetched when missing."""
    dest = Path(dest)
    missing = [name for name in files if not (dest / name).is_file()]
    if not missing:
        return [dest / name for name in files]
    if offline_mode() if offline is None else offline:
        raise DownloadError(
            f"{dest} lacks {', '.join(missing)} of {repo_id} and the offline switch is on (SLAP_OFFLINE / "
            f"HF_HUB_OFFLINE): fetch them on a machine with internet access and copy {dest} here"
        )
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    for name in missing:
        logger.info(f"fetching {name} of {repo_id} into {dest}")
        try:
            hf_hub_download(repo_id, name, repo_type=repo_type, revision=revision, local_dir=dest)
        except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as e:
            raise DownloadError(
                f"{name} of {repo_id}: not fetched ({type(e).__name__}: {str(e).splitlines()[0]}); run again "
                "to resume, set HF_ENDPOINT to a reachable mirror, or, for a gated repository, accept its terms "
                "on the Hub and give your token (HF_TOKEN, or hf auth login)"
            ) from None
    return [dest / name for name in files]
