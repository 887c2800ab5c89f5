"""Policies: one interface (:class:`BasePolicy`), a tabular policy, language-model policies.

``GRPO("tabular", env)`` looks the name up in :data:`POLICY_REGISTRY`; other policy modules
add their names with :func:`register_policy`.
"""

from __future__ import annotations

import os
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


def _language_model_policy(name: str, policy_kwargs: dict[str, Any]) -> type[BasePolicy]:
    """``"tiny"`` or a Hugging Face model folder / hub name (imported here: transformers is heavy)."""
    if name == "tiny":
        from grpo_agent.policies.tiny import TinyPolicy

        return TinyPolicy
    if os.path.isdir(name) or "/" in name:
        from grpo_agent.policies.causal_lm import CausalLMPolicy

        policy_kwargs.setdefault("model", name)
        return CausalLMPolicy
    raise ValueError(
        f"unknown policy {name!r}; choose one of {sorted([*POLICY_REGISTRY, 'tiny'])}, a Hugging Face model "
        "folder or hub name, or pass a BasePolicy"
    )


def make_policy(
    policy: str | type[BasePolicy] | BasePolicy,
    observation_space: spaces.Space,
    action_space: spaces.Space,
    env: Any = None,
    **policy_kwargs: Any,
) -> BasePolicy:
    """Build a policy from a registered name, ``"tiny"``, a Hugging Face model folder or hub
    name, a class, or return a ready instance as is. ``env`` is given to policies whose class
    sets ``needs_env`` (the tiny policy warm-starts on the env's tasks)."""
    if isinstance(policy, BasePolicy):
        if policy_kwargs:
            raise ValueError("policy_kwargs cannot be applied to a policy instance; pass the class or its name instead")
        return policy
    if isinstance(policy, str):
        policy = POLICY_REGISTRY[policy] if policy in POLICY_REGISTRY else _language_model_policy(policy, policy_kwargs)
    if isinstance(policy, type) and issubclass(policy, BasePolicy):
        if env is not None and getattr(policy, "needs_env", False):
            policy_kwargs.setdefault("env", env)
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
