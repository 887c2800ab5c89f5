"""What keeps a long run safe: non-finite updates are skipped, checkpoints are written atomically,
and running out of GPU memory ends with a message that names the knob to turn.

- :class:`FiniteGuardAdamW` is AdamW whose ``step`` first checks every gradient; if one holds
  a NaN or an infinity (a non-finite loss gives non-finite gradients), the step is skipped, the
  gradients are dropped and :attr:`FiniteGuardAdamW.skipped_steps` counts it. Weights and the
  optimiser's moments are never touched by a bad step. Pass it as ``optimizer_class``.
- :func:`atomic_save` writes an agent's checkpoint to a temporary file in the same folder and
  renames it over the old one: an interruption (Ctrl-C, a crash, a full disk) leaves the
  previous checkpoint intact, never a truncated zip.
- :func:`oom_message` turns a CUDA out-of-memory error into one actionable sentence.
"""

from __future__ import annotations

import math
import os
import pathlib
from typing import Any

import torch
from torch.distributed.tensor import DTensor

from grpo_agent.common import distributed


def gradients_are_finite(params: Any) -> bool:
    """True when no gradient of ``params`` holds a NaN or an infinity (one fused check). Sharded
    gradients are checked on every process's shard, so that all processes skip the same steps."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return True
    sharded = any(isinstance(g, DTensor) for g in grads)
    # One reduction per tensor, then one host sync: sum() of a tensor with a NaN/inf is non-finite.
    local = [(g.to_local() if isinstance(g, DTensor) else g).detach().float().sum() for g in grads]
    total = float(torch.stack(local).sum())
    if sharded:
        total = distributed.sum_over_processes(total)
    return math.isfinite(total)


class FiniteGuardAdamW(torch.optim.AdamW):
    """AdamW that skips any step whose gradients are not all finite.

    Same arguments as ``torch.optim.AdamW``. ``skipped_steps`` counts the skipped steps since
    construction (it is not part of the saved state: a resumed run counts afresh).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.skipped_steps = 0

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        """One AdamW step, or nothing (gradients zeroed) when a gradient is non-finite."""
        params = [p for group in self.param_groups for p in group["params"]]
        if not gradients_are_finite(params):
            self.skipped_steps += 1
            for p in params:
                p.grad = None
            return None
        return super().step(closure)


def atomic_save(agent: Any, path: str | os.PathLike[str]) -> pathlib.Path:
    """``agent.save`` to ``path`` (a ``.zip``) through a temporary file and an atomic rename."""
    path = pathlib.Path(path)
    if path.suffix == "":
        path = path.with_suffix(".zip")
    if not distributed.is_main_process():  # it helps gather a sharded agent, and writes nothing
        agent.save(path)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.zip")
    try:
        agent.save(tmp)
        with open(tmp, "rb") as handle:  # the rename is only atomic for data already on disk
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def oom_message(
    exc: BaseException, *, n_groups: int, group_size: int, max_new_tokens: int | None, gradient_checkpointing: bool
) -> str:
    """One sentence that says what ran out and which setting to lower first."""
    knobs = [
        f"--n-groups (now {n_groups}) or --group-size (now {group_size}), which set the rollout size",
        "--batch-size, which splits each update into smaller minibatches",
    ]
    if max_new_tokens is not None:
        knobs.append(f"--max-new-tokens (now {max_new_tokens})")
    if not gradient_checkpointing:
        knobs.append("--gradient-checkpointing, which trades ~30% speed for activation memory")
    return (
        f"out of GPU memory ({str(exc).splitlines()[0][:160]}); lower "
        + "; or ".join(knobs)
        + " (the last checkpoint in the run folder is intact: resume with --resume)"
    )


def is_oom(exc: BaseException) -> bool:
    """True for a CUDA (or other accelerator) out-of-memory error."""
    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    return (oom_type is not None and isinstance(exc, oom_type)) or "out of memory" in str(exc).lower()
