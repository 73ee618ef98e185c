"""Fresh batches (--fresh_batches true): new contents every epoch, every utterance once an epoch, the same
batches for the same epoch (so a resumed run redraws them), DDP shares that make up each batch."""

from collections import Counter

import pytest
from espnet2.train.distributed_utils import DistributedOption
from test_resume_after_kill import train_options

from espnet2_slap.tasks.slap import SLAPTask
from espnet2_slap.train.fresh_batches import FreshBatchSampler

BATCHES = [tuple(f"u{i:02d}" for i in range(start, start + size)) for start, size in ((0, 4), (4, 4), (8, 3))]


def test_each_seed_draws_a_partition_of_the_same_sizes():
    sampler = FreshBatchSampler(BATCHES)
    drawn = [sampler.generate(seed) for seed in range(5)]
    for batches in drawn:
        assert [len(b) for b in batches] == [4, 4, 3] and len(sampler) == 3
        assert sorted(k for b in batches for k in b) == sorted(k for b in BATCHES for k in b)
    assert len({tuple(map(frozenset, batches)) for batches in drawn}) == 5  # contents differ, not only order
    assert sampler.generate(3) == drawn[3]


def test_ranks_take_disjoint_shares_of_each_batch():
    shares = [FreshBatchSampler(BATCHES, rank, 2).generate(7) for rank in range(2)]
    whole = FreshBatchSampler(BATCHES).generate(7)
    for b, batch in enumerate(whole):
        assert not set(shares[0][b]) & set(shares[1][b]) and sorted(shares[0][b] + shares[1][b]) == sorted(batch)
    with pytest.raises(RuntimeError, match="a batch of 3 utterances cannot be shared by 4 ranks"):
        FreshBatchSampler(BATCHES, 0, 4)


def epoch_batches(corpus, bpe, tmp_path, fresh: bool, *extra: str) -> dict:
    """{epoch: the training batches (utterance ids) of ESPnet's iterator} for epochs 1-4."""
    options = [*map(str, train_options(corpus, bpe, tmp_path / "exp", fresh)), "--batch_size", "5", *extra]
    args = SLAPTask.get_parser().parse_args(options)  # the later --batch_size wins
    factory = SLAPTask.build_iter_factory(args, DistributedOption(), mode="train")
    return {epoch: [tuple(b) for b in factory.build_iter(epoch).batch_sampler] for epoch in range(1, 5)}


def test_task_iterator_redraws_batches_every_epoch(corpus, bpe, tmp_path):
    fixed = epoch_batches(corpus, bpe, tmp_path, False)
    assert len({frozenset(map(frozenset, b)) for b in fixed.values()}) == 1  # ESPnet: the same batches, reordered
    fresh = epoch_batches(corpus, bpe, tmp_path, True)
    assert len({frozenset(map(frozenset, b)) for b in fresh.values()}) == 4
    everyone = Counter(k for b in fixed[1] for k in b)
    for batches in fresh.values():
        assert Counter(k for b in batches for k in b) == everyone and all(n == 1 for n in everyone.values())
        assert sorted(map(len, batches)) == sorted(map(len, fixed[1]))
    assert epoch_batches(corpus, bpe, tmp_path, True) == fresh  # what a resumed run draws again


def test_fixed_number_of_iterations_per_epoch_still_covers_every_utterance(corpus, bpe, tmp_path):
    fresh = epoch_batches(corpus, bpe, tmp_path, True, "--num_iters_per_epoch", "3")
    # 32 clips in 6 batches (5, 5, 6, 5, 5, 6): epochs 1 and 2 take the halves of one drawn partition
    seen = Counter(k for epoch in (1, 2) for b in fresh[epoch] for k in b)
    assert all(len(b) == 3 for b in fresh.values()) and len(seen) == 32 and max(seen.values()) == 1
    assert set(fresh[3]) != set(fresh[1])
