"""ESPnet's Trainer, logging how many utterances were skipped for a bad audio file, warning of a collapse, and
reporting the epoch's number at validation (``valid epoch``: ``best_model_criterion valid epoch max`` averages the
last keep_nbest_models epochs)."""

import logging
import math
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional

import torch
from espnet2.train.reporter import SubReporter, aggregate
from espnet2.train.trainer import Trainer

from espnet2_slap.train.skip_bad_audio import skipped_counts

# A collapse warning when std_audio or std_text (metrics/inbatch.py: the mean per-dimension std of the
# L2-normalised projections, ~1/sqrt(D) when they are spread over the sphere) stays under this fraction of
# 1/sqrt(D) for COLLAPSE_EPOCHS training epochs in a row. For embeddings z = normalize(m + e) around a common
# direction m, std * sqrt(D) is about the sine of their angle to m, and their mean pairwise cosine about
# 1 - (std * sqrt(D))^2: at 0.1 it is 0.99, the clips (or captions) are practically one point and retrieval is
# left to noise. One low epoch is no sign: training may start that concentrated and spread out (the default
# mini_synth recipe logs 0.014, 0.010, 0.014, 0.021, ... in its first epochs, threshold 0.0125).
COLLAPSE_FRACTION = 0.1
COLLAPSE_EPOCHS = 3


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


def collapse_warning(epoch: int, history: List[Dict[str, float]], dim: int) -> Optional[str]:
    """The warning when std_audio / std_text of each of the last COLLAPSE_EPOCHS training epochs (``history``,
    oldest first, ``epoch`` the last) is under COLLAPSE_FRACTION / sqrt(dim)."""
    threshold = COLLAPSE_FRACTION / math.sqrt(dim)
    recent = history[-COLLAPSE_EPOCHS:]
    if len(recent) < COLLAPSE_EPOCHS:
        return None
    low = [name for name in recent[-1] if all(name in stds and stds[name] < threshold for stds in recent)]
    if not low:
        return None
    figures = ", ".join(
        f"{name} {', '.join(f'{stds[name]:.4f}' for stds in recent)} "
        f"(mean cosine of two of them ~{1 - recent[-1][name] ** 2 * dim:.3f})"
        for name in low
    )
    return (
        f"epoch {epoch}: possible collapse in the last {COLLAPSE_EPOCHS} epochs: {figures}, under {threshold:.4f} = "
        f"{COLLAPSE_FRACTION} / sqrt({dim}) (1/sqrt({dim}) = {1 / math.sqrt(dim):.3f} when the normalised "
        "projections are spread): the embeddings are nearly one point. If valid r1_* stay at chance, the model "
        "has collapsed: try a larger batch, a tau closer to 1, a lower learning rate, or CLAP (conf/train_clap.yaml)"
    )


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
    reports ``epoch`` (``reporting_epoch``)."""

    # the std_audio / std_text of this process's latest training epochs (after --resume, from the resumed one)
    std_history: List[Dict[str, float]] = []

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

    @classmethod
    def run(cls, *args, **kwargs) -> None:
        super().run(*args, **kwargs)
        logging.info(f"training finished; utterances skipped for a bad audio file: {skipped_summary() or 'none'}")
