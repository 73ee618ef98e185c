"""What every entry point does first: ESPnet's log format, then its own command line in the log."""

import logging
import shlex
import sys
from typing import Optional, Sequence

from espnet.utils.cli_utils import get_commandline_args

# The format of ESPnet's own entry points (espnet2/bin/*.py, AbsTask.main).
LOG_FORMAT = "%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s"


def start_logging(prog: str, cmd: Optional[Sequence[str]] = None, level: int = logging.INFO) -> None:
    """Configure the root logger with ESPnet's format and log the command line.

    ``cmd`` is what ``main(cmd)`` was given: None for a real command line (logged as ESPnet does, from
    ``sys.argv``), else the argument list of a call from Python, logged behind ``prog``.
    """
    logging.basicConfig(level=level, format=LOG_FORMAT)
    if cmd is None:
        logging.info(get_commandline_args())
    else:
        logging.info(" ".join(shlex.quote(word) for word in [sys.executable, "-m", prog, *cmd]))
