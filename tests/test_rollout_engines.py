"""The rollout-engine choice without vLLM: the hf engine is the policy's own sampler, and bad
choices are refused at construction with what to use instead."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch

import grpo_envs  # noqa: F401 - registers the grpo/* ids
from grpo_agent import GRPO, cli
from grpo_agent.engines import HFEngine
from grpo_agent.policies.base import CompletionBatch


def test_hf_is_the_default_and_samples_exactly_like_the_policy():
    env = gym.make("grpo/Bandit-v0")
    model = GRPO("tabular", env, group_size=4, n_groups=2, seed=0)
    assert model.generation_backend == "hf" and isinstance(model.rollout_engine, HFEngine)
    model.policy.seed(1)
    via_engine = model.rollout_engine.sample([0, 1], n=4)
    model.policy.seed(1)
    direct = model.policy.sample([0, 1], n=4)
    assert via_engine.actions == direct.actions and torch.equal(via_engine.log_probs, direct.log_probs)
    assert "is_weights" not in model._sample([0, 1], 4).extras  # exact log-probs: nothing to correct


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        (
            {"generation_backend": "sglang"},
            "generation_backend='sglang' is not supported; choose one of ('hf', 'vllm')",
        ),
        ({"rollout_correction": "token"}, "rollout_correction='token' is not supported"),
        ({"rollout_correction_cap": 0.5}, "rollout_correction_cap must be >= 1"),
    ],
)
def test_bad_engine_settings_are_refused_at_construction(kwargs, says):
    with pytest.raises(ValueError, match=says.replace("(", r"\(").replace(")", r"\)")):
        GRPO("tabular", gym.make("grpo/Bandit-v0"), **kwargs)


def test_missing_vllm_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    import grpo_agent.common.base_class as base_class

    # as on a machine set up without vLLM (GRPO_VLLM=0, or not Linux x86_64)
    monkeypatch.setattr(base_class, "vllm_available", lambda: False)
    monkeypatch.setattr(cli, "vllm_available", lambda: False)
    with pytest.raises(ImportError, match=r"scripts/setup\.sh .*pip install 'grpo-gym\[vllm\]'"):
        GRPO("tabular", gym.make("grpo/Bandit-v0"), generation_backend="vllm")
    with pytest.raises(SystemExit) as exited:
        cli.main(["train", "--generation-backend", "vllm", "--output", str(tmp_path / "run")])
    assert exited.value.code == 2 and "needs vLLM" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_per_token_extras_pad_like_log_probs_when_batches_concatenate():
    def batch(width: int) -> CompletionBatch:
        ones = torch.ones(2, width)
        return CompletionBatch(
            observations=["a", "b"],
            actions=["x", "y"],
            token_ids=torch.ones(2, width, dtype=torch.long),
            mask=ones.bool(),
            log_probs=-ones,
            truncated=torch.zeros(2, dtype=torch.bool),
            extras={"is_weights": 2 * ones, "length": torch.full((2,), width)},
        )

    joined = CompletionBatch.concatenate([batch(2), batch(3)])
    assert joined.extras["is_weights"].tolist() == [[2, 2, 0], [2, 2, 0], [2, 2, 2], [2, 2, 2]]
    assert joined.extras["length"].tolist() == [2, 2, 3, 3]


def test_lora_weights_reach_the_engine_merged_under_the_base_names():
    """What the vLLM engine loads after a LoRA update: the merged weights, named as in a plain checkpoint."""
    from grpo_agent.engines.vllm import merged_state_dict
    from grpo_agent.policies.tiny import TinyPolicy

    policy = TinyPolicy(sft_steps=0, lora={"r": 4, "lora_alpha": 8, "init_lora_weights": False})
    model = policy.model
    with torch.no_grad():
        model.merge_adapter()
        weights = merged_state_dict(model)
        model.unmerge_adapter()
        expected = {k: v.clone() for k, v in model.merge_and_unload().state_dict().items()}
    assert weights.keys() == expected.keys()
    assert all(torch.equal(weights[k], expected[k]) for k in expected)
    base = TinyPolicy(sft_steps=0).model.state_dict()
    assert weights.keys() == base.keys()
    assert not torch.equal(
        weights["model.layers.0.self_attn.q_proj.weight"], base["model.layers.0.self_attn.q_proj.weight"]
    )


def test_vllm_engine_refuses_a_policy_that_is_not_a_language_model():
    from grpo_agent.engines.vllm import VLLMEngine
    from grpo_agent.policies import TabularPolicy

    env = gym.make("grpo/Bandit-v0")
    with pytest.raises(TypeError, match="TabularPolicy samples with generation_backend='hf'"):
        VLLMEngine(TabularPolicy(env.observation_space, env.action_space))
