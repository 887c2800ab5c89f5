"""grpo/Bandit-v0: exact reward table, seeded noise, pinned contexts, SB3 compatibility."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from grpo_envs.envs.bandit import ContextualBanditEnv


def test_reward_table_has_one_best_action_per_state() -> None:
    env = ContextualBanditEnv(n_states=5, n_actions=4, noise_std=0.0)
    assert env.mean_rewards.shape == (5, 4)
    for s in range(5):
        best = env.best_actions[s]
        assert env.mean_rewards[s, best] == 1.0
        assert (np.delete(env.mean_rewards[s], best) < 0.8).all()
    assert env.optimal_expected_reward == 1.0
    uniform = np.full((5, 4), 0.25)
    assert env.expected_reward(uniform) == pytest.approx(env.mean_rewards.mean())


def test_noiseless_reward_equals_the_table() -> None:
    env = ContextualBanditEnv(noise_std=0.0)
    for s in range(env.n_states):
        for a in range(env.n_actions):
            obs, info = env.reset(options={"task_id": s})
            assert obs == s
            _, reward, terminated, truncated, info = env.step(a)
            assert reward == env.mean_rewards[s, a]
            assert terminated is True and truncated is False
            assert info["correct"] == (a == env.best_actions[s])


def test_noise_is_seeded() -> None:
    def rewards(seed: int) -> list[float]:
        env = ContextualBanditEnv(noise_std=0.5)
        env.reset(seed=seed)
        out = []
        for _ in range(10):
            env.reset()
            out.append(env.step(0)[1])
        return out

    assert rewards(3) == rewards(3)
    assert rewards(3) != rewards(4)


@pytest.mark.parametrize("action", ["1", None, 2.5, b"\x01"])
def test_bad_action_types(action) -> None:
    env = ContextualBanditEnv()
    env.reset(seed=0)
    with pytest.raises(TypeError, match="int"):
        env.step(action)


def test_out_of_range_action_and_state() -> None:
    env = ContextualBanditEnv(n_actions=3)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="out of range"):
        env.step(3)
    with pytest.raises(IndexError, match="out of range"):
        env.reset(options={"task_id": env.n_states})


def test_numpy_actions_work() -> None:
    env = gym.make("grpo/Bandit-v0")
    env.reset(seed=0)
    assert env.step(np.array([2]))[2] is True
    env.reset(seed=0)
    assert env.step(np.int64(2))[2] is True
