"""The FSDP plan: what an accelerate config asks for, and what a single process does with it.

The sharded training itself runs in tests/test_distributed.py (two gloo processes)."""

from __future__ import annotations

import gymnasium as gym
import pytest

import grpo_envs  # noqa: F401 - registers the grpo/* ids
from grpo_agent import GRPO
from grpo_agent.policies.sharding import ShardingPlan, is_sharded


def test_no_fsdp_config_gives_no_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACCELERATE_USE_FSDP", raising=False)
    assert ShardingPlan.from_accelerate_environment() is None


def test_the_plan_follows_the_accelerate_config(monkeypatch: pytest.MonkeyPatch) -> None:
    # the variables `accelerate launch` sets from configs/accelerate/fsdp_offload.yaml's fsdp_config
    for name, value in {
        "ACCELERATE_USE_FSDP": "true",
        "FSDP_VERSION": "2",
        "FSDP_RESHARD_AFTER_FORWARD": "false",
        "FSDP_OFFLOAD_PARAMS": "true",
        "FSDP_AUTO_WRAP_POLICY": "TRANSFORMER_BASED_WRAP",
        "FSDP_TRANSFORMER_CLS_TO_WRAP": "Qwen2DecoderLayer",
    }.items():
        monkeypatch.setenv(name, value)
    plan = ShardingPlan.from_accelerate_environment()
    assert plan == ShardingPlan(
        reshard_after_forward=False, offload_params=True, offload_reference=True, layer_classes=("Qwen2DecoderLayer",)
    )
    monkeypatch.setenv("FSDP_OFFLOAD_PARAMS", "false")
    monkeypatch.setenv("GRPO_GYM_OFFLOAD_REFERENCE", "1")
    plan = ShardingPlan.from_accelerate_environment()
    assert plan is not None and not plan.offload_params and plan.offload_reference


def test_fsdp_version_1_is_refused_with_the_key_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("FSDP_VERSION", "1")
    with pytest.raises(ValueError, match="fsdp_version: 2"):
        ShardingPlan.from_accelerate_environment()


def test_one_process_keeps_the_policy_whole() -> None:
    """Outside a process group there is nothing to shard over: a plan changes nothing."""
    model = GRPO("tabular", gym.make("grpo/Bandit-v0"), fsdp=ShardingPlan(), seed=0)
    assert model.policy.sharding_plan is None and not is_sharded(model.policy)


def test_a_tabular_policy_cannot_be_sharded() -> None:
    model = GRPO("tabular", gym.make("grpo/Bandit-v0"), seed=0)
    with pytest.raises(NotImplementedError, match="FSDP is for language-model policies"):
        model.policy.shard(ShardingPlan())
