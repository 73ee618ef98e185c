"""CLAP across ranks: a 2-process gloo test where the gathered loss and gradients equal the single-process ones
on the concatenated batch (negatives span all ranks, losses/infonce.py)."""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import random_batch, split_batch, tiny_model

WORLD_SIZE = 2


def espnet_ddp_loss(loss: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The loss ESPnet's trainer backpropagates under DDP (trainer.py, accum_grad 1), mirrored exactly:
    loss * weight / (weight summed over ranks) * world_size, where every rank's loss is the global-batch InfoNCE.
    The factors weight_r / total * world_size sum to world_size over the ranks, so after DDP's averaging the
    gradient is the single-process one, with equal or unequal per-rank batches (symmetric_infonce's docstring)."""
    loss = (loss * weight.type(loss.dtype)).sum()
    total = weight.clone()
    dist.all_reduce(total)
    return loss / total * dist.get_world_size()


def _rank(rank: int, tmp_path, model_file, batch, sizes) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg_init'}", rank=rank, world_size=WORLD_SIZE)
    try:
        # The pickled model: the same weights as the reference, without ESPnet's slow task imports.
        model = torch.load(model_file, weights_only=False)
        model.train()
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        loss, stats, weight = ddp(**split_batch(batch, sizes)[rank])
        espnet_ddp_loss(loss, weight).backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        torch.save(dict(loss=loss.detach(), grads=grads), tmp_path / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def loss_and_grads(model, batches):
    """Mean over ``batches`` of the single-process loss, and its gradients."""
    model.zero_grad()
    loss = sum(model(**b)[0] for b in batches) / len(batches)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys() and a
    return max((a[n] - b[n]).abs().max().item() for n in a)


@pytest.mark.parametrize("sizes", [[4, 4], [5, 4]], ids=["even", "odd"])
def test_clap_ddp_gathered_loss_and_gradients_equal_single_process(tmp_path, sizes):
    """``sizes``: pairs per rank; ESPnet splits an odd batch unevenly."""
    _, model = tiny_model(tmp_path, "clap", dropout=False)
    model.train()
    model_file = tmp_path / "model.pt"
    torch.save(model, model_file)
    batch = random_batch(sum(sizes), seed=1)

    mp.spawn(_rank, args=(tmp_path, model_file, batch, sizes), nprocs=WORLD_SIZE, join=True)

    # One process, whole batch: the reference. Its captions are padded to the longest of the whole batch, each
    # rank's to the longest of its part (split_batch); with dropout off and no statistic across the batch
    # (LayerNorm, masked means) the embeddings do not depend on that.
    ref_loss, ref_grads = loss_and_grads(model, [batch])
    assert ref_loss.numel() == 1 and set(ref_grads) == {n for n, _ in model.named_parameters()}
    for rank in range(WORLD_SIZE):
        out = torch.load(tmp_path / f"rank{rank}.pt")
        torch.testing.assert_close(out["loss"].reshape(()), ref_loss.reshape(()), atol=1e-5, rtol=1e-5)
        assert out["grads"].keys() == ref_grads.keys()
        for name, grad in ref_grads.items():
            torch.testing.assert_close(out["grads"][name], grad, atol=1e-5, rtol=1e-4, msg=lambda m: f"{name}: {m}")

    # Negatives only local (gather_with_grad a no-op): each rank's loss would be its half's InfoNCE and DDP would
    # average their gradients, i.e. the mean over the halves. That is far from the global result, so the check
    # above can only pass if the negatives really are gathered across the ranks.
    local_loss, local_grads = loss_and_grads(model, split_batch(batch, sizes))
    assert abs(local_loss.item() - ref_loss.item()) > 1e-2
    assert max_difference(local_grads, ref_grads) > 1e-3
