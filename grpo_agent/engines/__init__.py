"""Rollout engines: what samples the completions (see :mod:`grpo_agent.engines.base`).

``GRPO(..., generation_backend="vllm")`` and PPO's same argument pick one by name through
:func:`make_rollout_engine`; vLLM is imported only when its engine is built.
"""

from __future__ import annotations

from typing import get_args

from grpo_agent.engines.base import GenerationBackend, RolloutEngine
from grpo_agent.engines.hf import HFEngine
from grpo_agent.policies.base import BasePolicy


def make_rollout_engine(
    backend: GenerationBackend, policy: BasePolicy, *, gpu_memory_utilization: float, seed: int | None
) -> RolloutEngine:
    """The engine named ``backend`` for ``policy``.

    :param backend: ``"hf"`` (the policy's own sampler) or ``"vllm"``.
    :param policy: the policy it samples.
    :param gpu_memory_utilization: vLLM's share of the accelerator's memory (ignored by ``"hf"``).
    :param seed: vLLM's sampler seed (None: 0).
    """
    check_generation_backend(backend)
    if backend == "hf":
        return HFEngine(policy)
    # Deferred: it imports transformers (and, when built, vLLM), which a tabular agent never needs.
    from grpo_agent.engines.vllm import VLLMEngine

    return VLLMEngine(policy, gpu_memory_utilization=gpu_memory_utilization, seed=seed or 0)


def check_generation_backend(backend: str) -> None:
    """Refuse an unknown backend name, listing the known ones."""
    if backend not in get_args(GenerationBackend):
        raise ValueError(
            f"generation_backend={backend!r} is not supported; choose one of {get_args(GenerationBackend)}"
        )


__all__ = ["GenerationBackend", "HFEngine", "RolloutEngine", "check_generation_backend", "make_rollout_engine"]
