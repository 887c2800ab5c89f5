"""The rollout-engine interface: what samples the completions an algorithm trains on.

An engine answers ``n`` completions per observation with what the buffer needs: token ids,
a mask of the policy's own tokens and the per-token log-probs it sampled with, in a
:class:`~grpo_agent.policies.base.CompletionBatch`. Scoring, buffers and the loss do not know
which engine ran. Two exist: ``"hf"`` (:mod:`~grpo_agent.engines.hf`, the policy's own
sampler) and ``"vllm"`` (:mod:`~grpo_agent.engines.vllm`, a vLLM engine colocated with the
trainer); another (SGLang, a remote server) is one more module implementing this class.

An engine other than the policy's own sampler holds its own copy of the weights: the
algorithm calls :meth:`RolloutEngine.sync_weights` before each rollout, so it samples from
the weights of the last optimiser step. Its log-probs come from other
kernels than the trainer's (:attr:`RolloutEngine.exact_log_probs` is False), so the algorithm
recomputes them with the trainer's forward and corrects for the difference
(:mod:`~grpo_agent.common.rollout_correction`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from grpo_agent.policies.base import BasePolicy, CompletionBatch

GenerationBackend = Literal["hf", "vllm"]


class RolloutEngine(ABC):
    """Samples completions of a policy.

    :param policy: the policy being trained; the engine samples from its current weights
        (its own copy of them, refreshed by :meth:`sync_weights`, where it keeps one).
    """

    #: The engine's ``generation_backend`` name (what a saved agent rebuilds).
    name: ClassVar[GenerationBackend]

    #: True when the sampled log-probs are exactly what the trainer's forward computes, so that
    #: no recomputation and no off-policy correction are needed.
    exact_log_probs: bool = True

    def __init__(self, policy: BasePolicy) -> None:
        self.policy = policy

    @abstractmethod
    def sample(self, observations: Sequence[Any], n: int) -> CompletionBatch:
        """``n`` completions per observation (rows ``i*n .. i*n+n-1`` answer observation ``i``),
        with the engine's per-token log-probs of the sampled tokens."""

    def sync_weights(self) -> None:  # noqa: B027 - the policy's own sampler has nothing to sync
        """Make the engine sample from the policy's current weights."""

    def close(self) -> None:  # noqa: B027 - nothing to free for the policy's own sampler
        """Free what the engine holds (memory, processes); the engine is unusable afterwards."""
