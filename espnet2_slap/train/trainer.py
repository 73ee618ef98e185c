"""ESPnet's Trainer, logging how many utterances were skipped for a bad audio file, warning of a collapse or of
validation retrieval at chance (train/learning_warnings.py), and reporting the epoch's number at validation
(``valid epoch``: ``best_model_criterion valid epoch max`` averages the last keep_nbest_models epochs)."""

import logging
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Tuple

import torch
from espnet2.train.reporter import SubReporter, WeightedAverage, aggregate
from espnet2.train.trainer import Trainer

from espnet2_slap.train.learning_warnings import (
    CHANCE_EPOCHS,
    COLLAPSE_EPOCHS,
    chance_warning,
    collapse_warning,
    inbatch_chance,
)
from espnet2_slap.train.skip_bad_audio import skipped_counts


def skipped_summary() -> str:
    """E.g. "train 2, valid 1": utterances skipped for a bad audio file so far (each was named in a warning)."""
    return ", ".join(f"{name} {n}" for name, n in sorted(skipped_counts().items()) if n)


def log_skipped(when: str) -> None:
    summary = skipped_summary()
    if summary:
        logging.warning(f"{when}: utterances skipped for a bad audio file so far: {summary}")


def projection_dim(model: torch.nn.Module) -> int:
    """D of the projections of a (possibly DDP-wrapped) two-tower model."""
    model = getattr(model, "module", model)
    return [m for m in model.audio_tower.projector.modules() if isinstance(m, torch.nn.Linear)][-1].out_features


@contextmanager
def reporting_epoch(reporter: SubReporter) -> Iterator[SubReporter]:
    """Within it, each step of ``reporter`` (ESPnet's ``register(stats, weight)``, then ``next()``) also registers
    ``epoch``, the reporter's epoch, just before ``next()``: in the step the stats opened, so no count changes, and
    unweighted, so it aggregates (nanmean) to exactly the epoch, whatever the weights of the other stats."""
    close_step = reporter.next

    def next_with_epoch() -> None:
        reporter.register({"epoch": reporter.get_epoch()})
        close_step()

    reporter.next = next_with_epoch
    try:
        yield reporter
    finally:
        del reporter.next  # the class's next() again


class SLAPTrainer(Trainer):
    """ESPnet's Trainer; after each epoch and at the end of training it logs the skipped-utterance counts, after
    each training epoch it warns when the projections have collapsed (``collapse_warning``), and each validation
    reports ``epoch`` (``reporting_epoch``) and warns when retrieval has stayed at chance (``chance_warning``)."""

    # the std_audio / std_text of this process's latest training epochs (after --resume, from the resumed one)
    std_history: List[Dict[str, float]] = []
    # (mean of valid r1_a2t and r1_t2a, their chance level) of this process's latest validations
    r1_history: List[Tuple[float, float]] = []

    @classmethod
    def train_one_epoch(cls, *args, **kwargs) -> bool:
        all_steps_are_invalid = super().train_one_epoch(*args, **kwargs)
        log_skipped("after training this epoch")
        reporter: Optional[SubReporter] = kwargs.get("reporter")
        if reporter is not None and kwargs.get("model") is not None:
            stds = {
                name: float(aggregate(reporter.stats[name]))
                for name in ("std_audio", "std_text")
                if name in reporter.stats
            }
            cls.std_history = [*cls.std_history[-COLLAPSE_EPOCHS:], stds]
            warning = collapse_warning(reporter.get_epoch(), cls.std_history, projection_dim(kwargs["model"]))
            if warning:
                logging.warning(warning)
        return all_steps_are_invalid

    @classmethod
    def validate_one_epoch(cls, *args, **kwargs) -> None:
        with reporting_epoch(kwargs["reporter"]):
            super().validate_one_epoch(*args, **kwargs)
        log_skipped("after validating this epoch")
        cls.warn_at_chance(kwargs["reporter"])

    @classmethod
    def warn_at_chance(cls, reporter: SubReporter) -> None:
        """Records this validation's in-batch R@1 and warns when it has stayed at chance (``chance_warning``)."""
        stats = [reporter.stats.get(name, []) for name in ("r1_a2t", "r1_t2a")]
        if not all(stats) or not all(isinstance(value, WeightedAverage) for value in stats[0]):
            return
        r1 = (float(aggregate(stats[0])) + float(aggregate(stats[1]))) / 2
        cls.r1_history = [*cls.r1_history[-CHANCE_EPOCHS:], (r1, inbatch_chance([v.weight for v in stats[0]]))]
        warning = chance_warning(reporter.get_epoch(), cls.r1_history)
        if warning:
            logging.warning(warning)

    @classmethod
    def run(cls, *args, **kwargs) -> None:
        super().run(*args, **kwargs)
        logging.info(f"training finished; utterances skipped for a bad audio file: {skipped_summary() or 'none'}")
