"""The FSDP plan: what an accelerate config asks for, and what a single process does with it.

The sharded training itself runs in tests/test_distributed.py (two gloo processes)."""

from __future__ import annotations

import csv
from pathlib import Path

import gymnasium as gym
import pytest
from benchmark_scripts import load

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


def test_the_memory_table_counts_the_released_qwen2_sizes(tmp_path: Path) -> None:
    bench = load("memory_table")
    assert bench.main(["--no-measure", "--out-dir", str(tmp_path)]) == 0
    rows = list(csv.DictReader((tmp_path / "memory_table.csv").read_text().splitlines()))
    # Qwen2.5-0.5B, -1.5B and -7B as published: the configs built here are those models' shapes
    assert {r["model"]: int(r["params"]) for r in rows} == {
        "0.5B": 494_032_768,
        "1.5B": 1_543_714_304,
        "7B": 7_615_616_512,
    }
    seven = {r["option"]: r for r in rows if r["model"] == "7B"}
    assert seven["one device"]["fits"] == "False" and seven["FSDP x8"]["fits"] == "True"


def test_the_ppo_memory_table_adds_a_critic_without_the_vocabulary_projection(tmp_path: Path) -> None:
    bench = load("memory_table")
    assert bench.main(["--algo", "ppo", "--no-measure", "--out-dir", str(tmp_path)]) == 0
    rows = list(csv.DictReader((tmp_path / "memory_table_ppo.csv").read_text().splitlines()))
    seven = {r["option"]: r for r in rows if r["model"] == "7B"}
    params, hidden, vocab = 7_615_616_512, 3584, 152064
    critic = params - vocab * hidden + hidden + 1  # the untied head goes, a value head comes
    expected = (params + critic) * 12 + params * 2  # bf16 + fp32 AdamW trained, a bf16 reference of the policy
    assert float(seven["one device"]["device_gb"]) == pytest.approx(expected / 1e9)
    assert seven["one device"]["fits"] == "False" and seven["FSDP x8"]["fits"] == "True"


def test_the_memory_formula_matches_what_one_process_holds() -> None:
    bench = load("memory_table")
    measured = bench.measure_states("float32", fsdp=False)
    fp32 = bench.PRECISIONS["fp32"]
    assert measured["weights"] == measured["params"] * fp32.weights
    assert measured["grads"] == measured["params"] * fp32.grads
    assert measured["optimizer"] == measured["params"] * fp32.optimizer
    assert measured["reference"] == measured["params"] * fp32.reference
