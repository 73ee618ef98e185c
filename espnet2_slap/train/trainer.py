"""ESPnet's Trainer, logging how many utterances were skipped for a bad audio file."""

import logging

from espnet2.train.trainer import Trainer

from espnet2_slap.train.skip_bad_audio import skipped_counts


def skipped_summary() -> str:
    """E.g. "train 2, valid 1": utterances skipped for a bad audio file so far (each was named in a warning)."""
    return ", ".join(f"{name} {n}" for name, n in sorted(skipped_counts().items()) if n)


def log_skipped(when: str) -> None:
    summary = skipped_summary()
    if summary:
        logging.warning(f"{when}: utterances skipped for a bad audio file so far: {summary}")


class SLAPTrainer(Trainer):
    """ESPnet's Trainer; after each epoch and at the end of training it logs the skipped-utterance counts."""

    @classmethod
    def train_one_epoch(cls, *args, **kwargs) -> bool:
        all_steps_are_invalid = super().train_one_epoch(*args, **kwargs)
        log_skipped("after training this epoch")
        return all_steps_are_invalid

    @classmethod
    def validate_one_epoch(cls, *args, **kwargs) -> None:
        super().validate_one_epoch(*args, **kwargs)
        log_skipped("after validating this epoch")

    @classmethod
    def run(cls, *args, **kwargs) -> None:
        super().run(*args, **kwargs)
        logging.info(f"training finished; utterances skipped for a bad audio file: {skipped_summary() or 'none'}")
