"""Skipping utterances whose audio file is bad, without stopping training.

ESPnet's dataset must return a record for every id its batch sampler asks for, so the preprocessor returns a
marked record (:func:`skipped_record`) for an utterance it could not read, and the collate function, which sees
the whole batch, drops such records and counts them. The collate function runs in the DataLoader's worker
processes; its counter is shared memory, created in the main process, so the trainer can log the count
(:func:`skipped_counts`) at the end of each epoch and of training.
"""

import multiprocessing
from typing import Callable, Collection, Dict, List, Tuple

import numpy as np

SKIPPED = "skipped_bad_audio"


def skipped_record() -> Dict[str, np.ndarray]:
    """What the preprocessor returns for an utterance with a bad audio file."""
    return {SKIPPED: np.ones(1, dtype=np.int64)}


class SkipBadAudioCollateFn:
    """Wraps a collate function: drops the skipped records of a batch, counts them under ``name`` (train or
    valid) and collates the rest; a batch in which no utterance is left is an error naming its ids."""

    instances: List["SkipBadAudioCollateFn"] = []  # every one made in this process, for skipped_counts()

    def __init__(self, collate_fn: Callable, name: str):
        self.collate_fn = collate_fn
        self.name = name
        self.num_skipped = multiprocessing.Value("l", 0)
        SkipBadAudioCollateFn.instances.append(self)

    def __call__(self, data: Collection[Tuple[str, Dict[str, np.ndarray]]]):
        kept = [(uid, record) for uid, record in data if SKIPPED not in record]
        if len(kept) < len(data):
            with self.num_skipped.get_lock():
                self.num_skipped.value += len(data) - len(kept)
        if not kept:
            raise RuntimeError(
                f"every utterance of a {self.name} batch has a bad audio file: {[uid for uid, _ in data]} "
                "(see the warnings above)"
            )
        return self.collate_fn(kept)


def skipped_counts() -> Dict[str, int]:
    """{train/valid: utterances skipped so far for a bad audio file} over every collate function of this
    process (ESPnet makes new ones per shard with --multiple_iterator)."""
    counts: Dict[str, int] = {}
    for fn in SkipBadAudioCollateFn.instances:
        counts[fn.name] = counts.get(fn.name, 0) + fn.num_skipped.value
    return counts
