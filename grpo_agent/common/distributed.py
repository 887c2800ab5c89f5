"""Data-parallel training across processes, through ``torch.distributed`` (gloo on CPU, nccl on GPUs).

Each process collects its own whole groups, so group statistics need nothing from the others.
What does: the gradient (averaged, so that W processes with B completions each take the step one
process would take with the W * B completions), statistics over the whole batch
(``scale_rewards="batch"``, the REINFORCE++ baseline's std, the dapo token count), and the logged
metrics (averaged before rank 0 writes them). Outside a process group every function here is the
identity, so single-process code pays nothing.

The process group is the caller's: ``torchrun`` or ``accelerate launch`` set the environment
and :func:`init_from_environment` (or the user's own ``init_process_group``) starts it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.tensor import DTensor


def is_distributed() -> bool:
    """Whether this process belongs to a process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Processes in the group (1 outside one)."""
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    """This process's rank (0 outside a group)."""
    return dist.get_rank() if is_distributed() else 0


def is_main_process() -> bool:
    """Rank 0: the process that writes logs, run folders and checkpoints."""
    return rank() == 0


def init_from_environment() -> bool:
    """Start the default process group when a launcher (``torchrun``, ``accelerate launch``) set
    ``WORLD_SIZE > 1`` and none is running; gloo on CPU, nccl when CUDA is available.

    :return: whether this process is now part of a group of several.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and dist.is_available() and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return is_distributed()


def average_gradients(params: Iterable[torch.nn.Parameter]) -> None:
    """Replace every gradient by its mean over the processes (one flat all-reduce). Sharded
    gradients (``DTensor``, from FSDP) are left alone: FSDP averaged them in the backward pass."""
    if not is_distributed():
        return
    grads = [p.grad for p in params if p.grad is not None and not isinstance(p.grad, DTensor)]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def gather_rows(local: torch.Tensor) -> tuple[torch.Tensor, slice]:
    """Every process's ``local`` rows stacked in rank order, and the slice that is this process's.

    Processes may hold different numbers of rows (dynamic sampling drops groups per process).
    """
    if not is_distributed():
        return local, slice(0, local.shape[0])
    parts: list[torch.Tensor] = [local] * dist.get_world_size()  # placeholders, replaced by the gather
    dist.all_gather_object(parts, local.detach().cpu())
    start = sum(int(p.shape[0]) for p in parts[: dist.get_rank()])
    return torch.cat([p.to(local.device, local.dtype) for p in parts]), slice(start, start + int(local.shape[0]))


def gather_objects(local: list[Any]) -> list[Any]:
    """Every process's list concatenated in rank order (picklable items)."""
    if not is_distributed():
        return list(local)
    parts: list[list[Any]] = [[] for _ in range(dist.get_world_size())]
    dist.all_gather_object(parts, list(local))
    return [item for part in parts for item in part]


def sum_over_processes(value: float) -> float:
    """``value`` summed over the processes."""
    if not is_distributed():
        return value
    total = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return float(total.item())


def mean_over_processes(values: Mapping[str, float]) -> dict[str, float]:
    """Each value averaged over the processes that have it (a metric some processes did not
    record, e.g. a reward component only some of them saw, is averaged over those that did)."""
    if not is_distributed():
        return dict(values)
    everyone: list[dict[str, float]] = [{} for _ in range(dist.get_world_size())]
    dist.all_gather_object(everyone, dict(values))
    keys = set().union(*everyone)
    return {k: sum(d[k] for d in everyone if k in d) / sum(k in d for d in everyone) for k in keys}


def barrier() -> None:
    """Wait until every process gets here (nothing outside a group)."""
    if is_distributed():
        dist.barrier()


def broadcast_parameters(params: Iterable[torch.Tensor]) -> None:
    """Copy rank 0's values into every process's tensors, so all start from the same weights."""
    if not is_distributed():
        return
    for p in params:
        dist.broadcast(p.data, src=0)
