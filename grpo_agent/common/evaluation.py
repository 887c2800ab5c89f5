"""Evaluate an agent on a plain Gymnasium env (text spaces included, no VecEnv needed)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


def evaluate_policy(
    model: Any,
    env: gym.Env,
    n_eval_episodes: int = 10,
    deterministic: bool = True,
    return_episode_rewards: bool = False,
) -> tuple[float, float] | tuple[list[float], list[int]]:
    """Run ``n_eval_episodes`` episodes with ``model.predict`` and return the mean and std of
    the episode returns (or the lists of returns and lengths), like stable-baselines3's function.

    :param model: anything with SB3's ``predict(obs, deterministic=...) -> (action, state)``.
    :param env: a Gymnasium env (one-step or multi-step).
    :param n_eval_episodes: number of episodes.
    :param deterministic: greedy actions.
    :param return_episode_rewards: return per-episode returns and lengths instead.
    """
    returns: list[float] = []
    lengths: list[int] = []
    for _ in range(n_eval_episodes):
        obs, _ = env.reset()
        done, total, length = False, 0.0, 0
        while not done:
            action, _ = model.predict(obs, deterministic=deterministic)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            length += 1
            done = bool(terminated or truncated)
        returns.append(total)
        lengths.append(length)
    if return_episode_rewards:
        return returns, lengths
    return float(np.mean(returns)), float(np.std(returns))


def exact_expected_reward(policy: Any, env: gym.Env) -> float:
    """The exact expected reward of a tabular policy on an env that can compute it
    (``grpo/Bandit-v0``): ``env.unwrapped.expected_reward(policy.action_probs())``."""
    inner = env.unwrapped
    if not hasattr(inner, "expected_reward") or not hasattr(policy, "action_probs"):
        raise TypeError("exact_expected_reward needs an env with expected_reward() and a policy with action_probs()")
    return float(inner.expected_reward(policy.action_probs()))
