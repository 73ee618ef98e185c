"""Progress lines for long loops whose output goes to a log file (a job of a recipe stage): a tqdm bar there is
one line rewritten with carriage returns, which neither ``tail -f`` nor the recipe's console shows until it ends.

    progress = Progress("formatted", total=len(entries), unit="utterances")
    for entry in entries:
        ...
        progress.step()  # logs "formatted 1200 of 5000 utterances (24 %), 35.2/s, about 2 min left" now and then
"""

import logging
import time
from typing import Callable, Optional

logger = logging.getLogger(__name__)

# The recipe's console follows the logs for this word (slap.sh's stages 2, 4 and 7).
PROGRESS_WORD = "progress:"


class Progress:
    """Logs ``<PROGRESS_WORD> <what> <done> of <total> <unit> (<percent>), <rate>/s, about <time> left`` at most
    every ``every`` seconds (and at the last step), through ``log`` (logging.info by default)."""

    def __init__(
        self, what: str, total: int, unit: str, every: float = 30.0, log: Optional[Callable[[str], None]] = None
    ):
        self.what, self.total, self.unit, self.every = what, total, unit, every
        self.log = log or logger.info
        self.done = 0
        self.start = self.last = time.monotonic()

    def step(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if now - self.last < self.every and self.done < self.total:
            return
        self.last = now
        rate = self.done / max(now - self.start, 1e-9)
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        self.log(
            f"{PROGRESS_WORD} {self.what} {self.done} of {self.total} {self.unit} "
            f"({100 * self.done / max(self.total, 1):.0f} %), {rate:.1f}/s, about {duration(left)} left"
        )


def duration(seconds: float) -> str:
    """E.g. "40 s", "12 min", "3.5 h"."""
    if seconds == float("inf"):
        return "an unknown time"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
