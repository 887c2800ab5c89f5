"""The ``"hf"`` rollout engine: the policy's own sampler.

For a :class:`~grpo_agent.policies.causal_lm.CausalLMPolicy` that is a decode loop over the
Hugging Face forward with the KV cache, prompts shared within a group
(:mod:`~grpo_agent.policies.decoding`, :mod:`~grpo_agent.policies.shared_prefix`); for the
tabular policy, a draw from its table. It samples from the trained weights themselves, so its
log-probs are the trainer's: nothing to sync, nothing to correct.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from grpo_agent.engines.base import RolloutEngine
from grpo_agent.policies.base import CompletionBatch


class HFEngine(RolloutEngine):
    """Samples with :meth:`BasePolicy.sample <grpo_agent.policies.base.BasePolicy.sample>` (works for every policy).

    Example::

        >>> import gymnasium as gym, grpo_envs
        >>> from grpo_agent.policies import TabularPolicy
        >>> env = gym.make("grpo/Bandit-v0")
        >>> engine = HFEngine(TabularPolicy(env.observation_space, env.action_space))
        >>> len(engine.sample([0, 1], n=4))
        8
    """

    name = "hf"
    exact_log_probs = True

    def sample(self, observations: Sequence[Any], n: int) -> CompletionBatch:
        """``n`` completions per observation from the policy's own sampler."""
        return self.policy.sample(observations, n=n)
