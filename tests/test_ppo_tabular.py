"""PPO on the tabular policy: the one-token advantage by hand, the value table, learning, save/load.

With a completion of one token and ``gamma = 1``, GAE reduces to ``A = r - beta * KL - V(s)``
and the return to ``r - beta * KL``; every quantity can be checked exactly.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import grpo_envs  # noqa: F401 - registers the grpo/* ids
from grpo_agent.grpo.loss import kl_penalty
from grpo_agent.ppo import PPO
from grpo_agent.ppo.critic import TabularCritic

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def make_ppo(env_kwargs: dict | None = None, **kwargs) -> PPO:
    env = gym.make("grpo/Bandit-v0", **(env_kwargs or {}))
    kwargs.setdefault("learning_rate", 0.1)
    kwargs.setdefault("n_steps", 64)
    return PPO("tabular", env, seed=0, device="cpu", **kwargs)


def test_one_token_advantages_and_returns_are_exact():
    # Noise-free rewards, a non-trivial critic and policy: every term of A is known exactly.
    model = make_ppo({"noise_std": 0.0}, beta=0.1, whiten_advantages=False)
    with torch.no_grad():
        model.critic.values.copy_(torch.linspace(-0.5, 0.5, model.policy.n_states))
        model.policy.logits.add_(torch.randn(model.policy.logits.shape, generator=torch.Generator().manual_seed(0)))
    values_before = model.critic.values.detach().clone()
    model.learn(total_timesteps=64)  # one rollout; the rollout keeps its pre-update values
    batch = model.rollout_buffer.completions
    states = model.policy.state_index(batch.observations)
    actions = batch.token_ids[:, 0]
    table = torch.as_tensor(model.get_env().unwrapped.mean_rewards, dtype=batch.log_probs.dtype)
    kl = kl_penalty(batch.log_probs, model.policy.reference_log_probs(batch), "k1")
    returns = table[states, actions].unsqueeze(1) - 0.1 * kl
    values = values_before[states].unsqueeze(1)
    assert kl.abs().sum() > 0 and values.abs().sum() > 0
    assert torch.allclose(model.rollout_buffer.values, values)
    assert torch.allclose(model.rollout_buffer.returns, returns, atol=1e-6)
    assert torch.allclose(model.rollout_buffer.advantages, returns - values, atol=1e-6)


def test_value_table_learns_each_states_expected_reward():
    # The policy is frozen, so V(s) must converge to the fixed policy's E[r | s] (a decaying
    # learning rate averages out the reward noise: ~1,600 samples per state).
    model = make_ppo(
        beta=0.0, vf_coef=1.0, clip_range_vf=None, n_epochs=4, learning_rate=0.05, lr_scheduler_type="linear"
    )
    with torch.no_grad():
        model.policy.logits.add_(torch.randn(model.policy.logits.shape, generator=torch.Generator().manual_seed(1)))
    model.policy.logits.requires_grad_(False)
    probs = model.policy.action_probs()
    model.learn(total_timesteps=64 * 200)
    expected = (probs * model.get_env().unwrapped.mean_rewards).sum(axis=1)
    assert np.array_equal(model.policy.action_probs(), probs)
    assert np.abs(model.critic.values.detach().numpy() - expected).max() < 0.05


def test_ppo_learns_the_bandit():
    model = make_ppo(beta=0.04, n_steps=128, batch_size=64, n_epochs=10)
    env = model.get_env().unwrapped
    before = env.expected_reward(model.policy.action_probs()) / env.optimal_expected_reward
    model.learn(total_timesteps=4096)
    after = env.expected_reward(model.policy.action_probs()) / env.optimal_expected_reward
    assert before < 0.7 and after > 0.95


def test_save_load_round_trips_the_value_table(tmp_path):
    model = make_ppo(n_steps=32).learn(total_timesteps=64)
    assert isinstance(model.critic, TabularCritic) and model.critic.values.abs().sum() > 0
    model.save(tmp_path / "ppo")
    loaded = PPO.load(tmp_path / "ppo", env=gym.make("grpo/Bandit-v0"), device="cpu")
    assert torch.equal(loaded.critic.values, model.critic.values)
    assert torch.equal(loaded.policy.logits, model.policy.logits)


def test_a_table_has_no_shared_critic():
    with pytest.raises(ValueError, match="critic='separate'"):
        make_ppo(critic="shared")
