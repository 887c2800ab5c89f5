"""A check both reward-worker backends must pass: the rewards and reasons of in-process
scoring, in input order (tests/test_reward_workers.py, tests/test_ray_rewards.py)."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym

import grpo_envs  # noqa: F401 - registers the grpo/* ids
from grpo_agent.common.reward_workers import RewardPool
from grpo_agent.common.rollout import score_completions


def assert_pool_scores_like_this_process(make_pool: Callable[[gym.Env, int], RewardPool]) -> None:
    env = gym.make("grpo/Math-v0", levels=1, num_tasks=20)
    tasks = env.unwrapped.tasks
    task_ids = [k % 5 for k in range(12)]
    # right answers on even rows, a wrong one on odd rows, so order matters
    actions = [f"\\boxed{{{tasks[k].reference}}}" if i % 2 == 0 else "\\boxed{-12345}" for i, k in enumerate(task_ids)]
    here = score_completions(env, actions, task_ids, lambda r, i: True)
    pool = make_pool(env, 2)
    try:
        there = score_completions(env, actions, task_ids, lambda r, i: True, pool)
    finally:
        pool.close()
    assert here is not None and there is not None
    assert there[0].tolist() == here[0].tolist() == [1.0, 0.0] * 6
    assert [i["reason"] for i in there[1]] == [i["reason"] for i in here[1]]
