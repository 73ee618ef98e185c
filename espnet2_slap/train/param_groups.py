"""Per-part learning rates on an optimizer that ESPnet built with one group of all parameters."""

from typing import Iterable

import torch


def scale_lr_of(optimizer: torch.optim.Optimizer, modules: Iterable[torch.nn.Module], scale: float) -> int:
    """Moves the parameters of ``modules`` out of each of ``optimizer``'s groups into a group of their own with
    the same options and ``lr * scale`` (BYOL-style predictors are often trained faster than the towers).
    ESPnet's schedulers that scale each group's own base lr (warmuplr, ...) keep the ratio; one that sets every
    group to one value (cosineannealingwarmuprestarts' max_lr) does not. Returns the number of tensors moved."""
    ids = {id(p) for m in modules for p in m.parameters()}
    moved_total = 0
    for group in list(optimizer.param_groups):
        moved = [p for p in group["params"] if id(p) in ids]
        if not moved:
            continue
        group["params"] = [p for p in group["params"] if id(p) not in ids]
        options = {k: v for k, v in group.items() if k != "params"}
        optimizer.add_param_group({**options, "params": moved, "lr": group["lr"] * scale})
        moved_total += len(moved)
    return moved_total
