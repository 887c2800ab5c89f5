"""Policies: one interface (:class:`BasePolicy`), a tabular policy, language-model policies.

``GRPO("tabular", env)`` looks the name up in :data:`POLICY_REGISTRY`; other policy modules
add their names with :func:`register_policy`.
"""

from __future__ import annotations

from typing import Any

from gymnasium import spaces

from grpo_agent.policies.base import BasePolicy, CompletionBatch, TokenLogProbs
from grpo_agent.policies.tabular import TabularPolicy

#: Policy names accepted as the ``policy`` argument of the algorithms.
POLICY_REGISTRY: dict[str, type[BasePolicy]] = {"tabular": TabularPolicy, "TabularPolicy": TabularPolicy}


def register_policy(name: str, policy_class: type[BasePolicy]) -> None:
    """Make ``policy_class`` available to the algorithms under ``name``."""
    if not (isinstance(policy_class, type) and issubclass(policy_class, BasePolicy)):
        raise TypeError(f"policy_class must be a subclass of BasePolicy, got {policy_class!r}")
    POLICY_REGISTRY[name] = policy_class


def make_policy(
    policy: str | type[BasePolicy] | BasePolicy,
    observation_space: spaces.Space,
    action_space: spaces.Space,
    **policy_kwargs: Any,
) -> BasePolicy:
    """Build a policy from a registered name, a class, or return a ready instance as is."""
    if isinstance(policy, BasePolicy):
        if policy_kwargs:
            raise ValueError("policy_kwargs cannot be applied to a policy instance; pass the class or its name instead")
        return policy
    if isinstance(policy, str):
        if policy not in POLICY_REGISTRY:
            raise ValueError(f"unknown policy {policy!r}; choose one of {sorted(POLICY_REGISTRY)} or pass a BasePolicy")
        policy = POLICY_REGISTRY[policy]
    if isinstance(policy, type) and issubclass(policy, BasePolicy):
        return policy(observation_space, action_space, **policy_kwargs)
    raise TypeError(f"policy must be a name, a BasePolicy subclass or instance, got {policy!r}")


__all__ = [
    "POLICY_REGISTRY",
    "BasePolicy",
    "CompletionBatch",
    "TabularPolicy",
    "TokenLogProbs",
    "make_policy",
    "register_policy",
]
