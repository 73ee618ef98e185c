"""ESPnet's ``--init_param`` read through the safe checkpoint reader (checkpoints/reader.py).

ESPnet's ``AbsTask.main_worker`` loads each ``--init_param <file>:<src_key>:<dst_key>:<exclude_keys>`` with
``espnet2.torch_utils.load_pretrained_model.load_pretrained_model``, which reads the file with
``torch.load(weights_only=False)``: any code the file names would run. ``load_init_param`` keeps that
function's arguments and meaning and reads the file with ``read_checkpoint``; ``safe_init_param`` puts it in
place of ESPnet's for the time of a task's ``main_worker`` (tasks/slap.py says why there).
"""

import contextlib
import logging
from typing import Any, Dict, Iterator, Sequence

import espnet2.tasks.abs_task as abs_task
import torch
from espnet2.torch_utils.load_pretrained_model import filter_state_dict

from espnet2_slap.checkpoints.reader import read_checkpoint


def parse_init_param(init_param: str):
    """(path, src_key, dst_key, exclude prefixes) of ``<file>[:<src_key>[:<dst_key>[:<exclude_keys>]]]``; empty
    keys are None, exclude_keys is a comma-separated list of key prefixes."""
    fields = init_param.split(":")
    if len(fields) > 4:
        raise ValueError(f"--init_param {init_param}: expected <file>:<src_key>:<dst_key>:<exclude_keys>")
    path, src_key, dst_key, excludes = fields + [""] * (4 - len(fields))
    return path, src_key or None, dst_key or None, [e for e in excludes.split(",") if e]


def load_init_param(init_param: str, model: torch.nn.Module, ignore_init_mismatch: bool, map_location: str = "cpu"):
    """ESPnet's ``load_pretrained_model`` with the file read by ``read_checkpoint``: the state dict in the file
    (under ``module`` for a DeepSpeed file) without the entries starting with an exclude key, those starting with
    ``<src_key>.`` taken without that prefix, loaded into the submodule ``dst_key`` of ``model`` (dotted; the whole
    model if empty); with ``ignore_init_mismatch``, entries of another name or shape are left out with a warning,
    otherwise they fail as in ESPnet (``load_state_dict``).

    Two differences, both where ESPnet's result is not what its own help describes: ``src_key`` matches up to a dot
    (ESPnet matches the bare prefix: src_key ``enc`` takes ``encoder.x`` as ``der.x``), and an empty exclude list
    (``file:src:dst:``, as in ESPnet's docstring) excludes nothing (in ESPnet it excludes every entry). The tensors
    are read on the CPU and copied to the model's device: ``map_location`` is accepted for ESPnet's call only."""
    path, src_key, dst_key, excludes = parse_init_param(init_param)
    target: Any = model
    for name in (dst_key or "").split("."):
        target = getattr(target, name) if name else target
    src_state: Dict[str, Any] = read_checkpoint(path)
    if isinstance(src_state, dict) and "module" in src_state:
        src_state = src_state["module"]
    if not isinstance(src_state, dict):
        raise ValueError(f"--init_param {init_param}: {path} holds a {type(src_state).__name__}, not a state dict")
    src_state = {k: v for k, v in src_state.items() if not any(k.startswith(e) for e in excludes)}
    if src_key is not None:
        src_state = {k[len(src_key) + 1 :]: v for k, v in src_state.items() if k.startswith(src_key + ".")}
    dst_state = target.state_dict()
    if ignore_init_mismatch:
        src_state = filter_state_dict(dst_state, src_state)
    dst_state.update(src_state)
    target.load_state_dict(dst_state)
    logging.info(f"--init_param {init_param}: {len(src_state)} tensors loaded (read safely)")


def espnet_loads_through_its_name() -> bool:
    """Whether ESPnet's ``AbsTask.main_worker`` loads --init_param by calling its module's global
    ``load_pretrained_model`` (ESPnet 202511 does, at its step 6)."""
    code = abs_task.AbsTask.main_worker.__func__.__code__
    return hasattr(abs_task, "load_pretrained_model") and "load_pretrained_model" in code.co_names


@contextlib.contextmanager
def safe_init_param(init_param: Sequence[str]) -> Iterator[None]:
    """While in this context, ``AbsTask.main_worker`` loads ``--init_param`` with ``load_init_param``. With
    ``init_param`` given, RuntimeError if ESPnet's ``main_worker`` no longer loads it by that module-level name (the
    replacement would not take effect and torch.load would read the files)."""
    if not espnet_loads_through_its_name():
        if init_param:
            raise RuntimeError(
                "ESPnet's AbsTask.main_worker no longer loads --init_param through espnet2.tasks.abs_task."
                "load_pretrained_model, so espnet2_slap cannot read the files with its safe reader: use the ESPnet "
                "version of setup.py, or adapt espnet2_slap/checkpoints/init_param.py to this one"
            )
        yield
        return
    original = abs_task.load_pretrained_model
    abs_task.load_pretrained_model = load_init_param
    try:
        yield
    finally:
        abs_task.load_pretrained_model = original
