"""Fresh batches every epoch: batch contents redrawn from the seed and the epoch (``--fresh_batches true``).

ESPnet's batch samplers make the batches once; each epoch its ``SequenceIterFactory`` shuffles their order, not
their contents, so a contrastive loss meets the same in-batch negatives every epoch. The factory asks its
sampler for the batches of an epoch with ``sampler.generate(epoch + seed)``; :class:`FreshBatchSampler`
answers with a new random partition of the same utterances into batches of the same sizes, drawn from that
number alone. An epoch thus covers every utterance of the built batches once, and a resumed run (which
redoes an epoch with its number) draws the same batches again.

Under DDP every rank draws the same partition and takes its share of each batch (``batch[rank::world_size]``,
ESPnet's sharding), so the ranks see disjoint utterances that together make each batch.

Batches mix lengths: meant for clips cropped to one length (``crop_seconds``), where lengths do not matter.
"""

from typing import Iterator, List, Sequence, Tuple

import numpy as np
from espnet2.samplers.abs_sampler import AbsSampler


class FreshBatchSampler(AbsSampler):
    """The utterances of ``batches`` in batches of their sizes, redrawn by each ``generate(seed)``; each batch
    cut to this rank's share."""

    def __init__(self, batches: Sequence[Sequence[str]], rank: int = 0, world_size: int = 1):
        self.sizes = [len(batch) for batch in batches]
        if min(self.sizes, default=world_size) < world_size:
            raise RuntimeError(
                f"fresh batches: a batch of {min(self.sizes)} utterances cannot be shared by {world_size} ranks "
                "(raise batch_size or batch_bins)"
            )
        self.keys = [key for batch in batches for key in batch]
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        return len(self.sizes)

    def __iter__(self) -> Iterator[Tuple[str, ...]]:
        return iter(self.generate(0))

    def generate(self, seed: int) -> List[Tuple[str, ...]]:
        order = np.random.RandomState(seed).permutation(len(self.keys))
        ends = np.cumsum(self.sizes)
        return [
            tuple(self.keys[i] for i in order[end - size : end])[self.rank :: self.world_size]
            for size, end in zip(self.sizes, ends)
        ]

    def __repr__(self) -> str:
        shared = f", rank {self.rank} of {self.world_size}" if self.world_size > 1 else ""
        return f"{type(self).__name__}(N-batch={len(self)}, utterances={len(self.keys)}{shared})"
