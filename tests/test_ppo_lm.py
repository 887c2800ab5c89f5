"""PPO for language models: GAE by hand, the critic layouts, updates, save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import grpo_envs  # noqa: F401 - registers the grpo/* ids
from grpo_agent.policies.tiny import TinyConfig, TinyPolicy
from grpo_agent.ppo import PPO, token_gae
from grpo_agent.ppo.ppo import whiten
from grpo_envs import RewardFnEnv, Task

SMALL = TinyConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def digit_fraction(text: str, reference: object) -> float:
    return sum(c.isdigit() for c in text) / max(len(text), 1)


def make_env() -> RewardFnEnv:
    return RewardFnEnv([Task(f"Write digits {i}", None, id=f"t{i}") for i in range(6)], digit_fraction)


def test_gae_matches_hand_computation_and_skips_masked_tokens():
    # Row 0: tokens 0, 1, (2 is an env token), 3; reward 1 on the last token.
    rewards = torch.tensor([[0.0, -0.1, 0.0, 1.0], [0.5, 0.0, 0.0, 0.0]])
    values = torch.tensor([[0.2, 0.4, 9.0, 0.6], [0.3, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, False, True], [True, False, False, False]])
    gamma, lam = 0.9, 0.5
    adv, ret = token_gae(rewards, values, mask, gamma, lam)
    d3 = 1.0 - 0.6  # last token: no successor
    d1 = -0.1 + gamma * 0.6 - 0.4  # token 1 bootstraps from token 3, across the env token
    d0 = 0.0 + gamma * 0.4 - 0.2
    a3, a1 = d3, d1 + gamma * lam * d3
    a0 = d0 + gamma * lam * a1
    expected = torch.tensor([[a0, a1, 0.0, a3], [0.5 - 0.3, 0.0, 0.0, 0.0]])
    assert torch.allclose(adv, expected, atol=1e-6)
    assert torch.allclose(ret, (expected + values) * mask, atol=1e-6)


def test_whiten_normalises_only_masked_entries():
    x = torch.tensor([[1.0, 2.0, 100.0], [3.0, 4.0, -50.0]])
    mask = torch.tensor([[True, True, False], [True, True, False]])
    w = whiten(x, mask)
    assert torch.allclose(w[mask].mean(), torch.tensor(0.0), atol=1e-6)
    assert torch.allclose(w[mask].pow(2).mean(), torch.tensor(1.0), atol=1e-4)
    assert (w[~mask] == 0).all()


@pytest.mark.parametrize("critic", ["separate", "shared"])
def test_ppo_updates_policy_and_critic_with_finite_metrics(critic):
    env = make_env()
    policy = TinyPolicy(env.observation_space, env.action_space, tiny_config=SMALL, max_new_tokens=8)
    model = PPO(policy, env, learning_rate=1e-2, n_steps=12, n_epochs=2, batch_size=6, beta=0.05, critic=critic, seed=0)
    before_policy = [p.detach().clone() for p in policy.parameters()]
    before_head = model.critic.head.weight.detach().clone()
    model.learn(total_timesteps=24)
    values = model.logger.name_to_value
    assert model._n_updates == 2 * 2 * 2  # rollouts x epochs x minibatches
    assert any(not torch.equal(a, b) for a, b in zip(before_policy, policy.parameters()))
    assert not torch.equal(before_head, model.critic.head.weight)
    for key in ("train/loss", "train/value_loss", "train/policy_loss", "train/approx_kl", "train/grad_norm"):
        assert np.isfinite(values[key]), key
    if critic == "separate":  # the critic's transformer is its own, not the policy's
        assert model.critic.backbone is not None
        assert all(
            p.data_ptr() != q.data_ptr() for p in model.critic.backbone.parameters() for q in policy.parameters()
        )


def test_ppo_save_load_restores_policy_critic_and_continues(tmp_path):
    env = make_env()
    policy = TinyPolicy(env.observation_space, env.action_space, tiny_config=SMALL, max_new_tokens=6)
    model = PPO(policy, env, learning_rate=1e-2, n_steps=8, seed=0).learn(total_timesteps=8)
    model.save(tmp_path / "ppo")
    loaded = PPO.load(tmp_path / "ppo", env=env, device="cpu")
    for a, b in zip(model.critic.state_dict().values(), loaded.critic.state_dict().values()):
        assert torch.equal(a, b)
    batch = policy.sample(["Write digits 2"], n=2)
    with torch.no_grad():
        assert torch.equal(loaded.policy.log_probs(batch).log_probs, policy.log_probs(batch).log_probs)
    loaded.learn(total_timesteps=8, reset_num_timesteps=False)
    assert loaded.num_timesteps == 16
