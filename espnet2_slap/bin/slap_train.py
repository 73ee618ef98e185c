#!/usr/bin/env python3
"""Train (or --collect_stats for) a SLAP or CLAP model: ``python -m espnet2_slap.bin.slap_train --help``."""

from espnet2_slap.tasks.slap import SLAPTask


def get_parser():
    return SLAPTask.get_parser()


def main(cmd=None):
    r"""SLAP/CLAP training.

    Example:
        % python -m espnet2_slap.bin.slap_train --print_config --model clap
        % python -m espnet2_slap.bin.slap_train --config conf/train_slap.yaml
    """
    SLAPTask.main(cmd=cmd)


if __name__ == "__main__":
    main()
