"""The rollout steps every algorithm shares: draw tasks, and score completions with one env step each.

A text bandit scores a completion in one step, after a reset that pins the completion's task
(``reset(options={"task_id": k})``). GRPO scores ``G`` completions per task this way, PPO one;
multi-turn envs go through :class:`~grpo_agent.common.multi_turn.MultiTurnCollector` instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from grpo_agent.common.reward_workers import RewardPool, Scored

#: ``(reward, info) -> keep going``: called after every scored completion (the agent counts
#: the timestep and runs its callbacks' ``on_step``); False stops the rollout.
OnStep = Callable[[float, dict[str, Any]], bool]


def draw_tasks(reset: Callable[[], tuple[Any, dict[str, Any]]], n: int, algorithm: str) -> tuple[list[Any], list[Any]]:
    """``n`` prompts from ``reset()``, with the task ids that pin each of them again.

    :param reset: the env's reset (the agent's, which seeds the very first one).
    :param n: prompts to draw.
    :param algorithm: the caller's name, for the error message.
    :raises ValueError: when the env's ``reset`` returns no ``info["task_id"]``.
    """
    observations, task_ids = [], []
    for _ in range(n):
        obs, info = reset()
        observations.append(obs)
        task_ids.append(task_id_of(info, algorithm))
    return observations, task_ids


def task_id_of(info: dict[str, Any], algorithm: str) -> Any:
    """The ``task_id`` of reset's ``info``.

    :raises ValueError: when there is none, saying what the env must provide.
    """
    if info.get("task_id") is None:
        raise ValueError(
            f"{algorithm} scores each completion by resetting to its task: the env's reset() must return "
            "info['task_id'] and accept options={'task_id': k}"
        )
    return info["task_id"]


def _score_here(env: gym.Env, actions: Sequence[Any], task_ids: Sequence[Any]) -> Iterator[Scored]:
    for action, task_id in zip(actions, task_ids):
        env.reset(options={"task_id": task_id})
        _, reward, terminated, truncated, info = env.step(action)
        yield float(reward), bool(terminated), bool(truncated), info


def score_completions(
    env: gym.Env,
    actions: Sequence[Any],
    task_ids: Sequence[Any],
    on_step: OnStep,
    pool: RewardPool | None = None,
) -> tuple[np.ndarray, list[dict[str, Any]]] | None:
    """Score ``actions[i]`` on task ``task_ids[i]`` with one ``reset`` + ``step`` each.

    :param env: a one-step env (every ``grpo/*`` text bandit, ``grpo/Bandit-v0``).
    :param actions: the completions.
    :param task_ids: one task id per completion.
    :param on_step: see :data:`OnStep`.
    :param pool: score in these worker processes (their own env copies) instead of ``env``;
        ``on_step`` then runs once all are scored, in order.
    :return: ``(rewards (n,), infos)``, or None when ``on_step`` stopped the rollout.
    :raises RuntimeError: when an episode does not end after its first step.
    """
    if len(actions) != len(task_ids):
        raise ValueError(f"one task id per completion: {len(actions)} completions, {len(task_ids)} task ids")
    rewards = np.empty(len(actions))
    infos: list[dict[str, Any]] = []
    scored = pool.score(actions, task_ids) if pool is not None else _score_here(env, actions, task_ids)
    for i, (reward, terminated, truncated, info) in enumerate(scored):
        if not (terminated or truncated):
            raise RuntimeError(
                "the one-step collector needs episodes that end after one step; a multi-turn env "
                "(unwrapped.max_turns > 1) needs GRPO's multi-turn collector and a policy with continue_turn"
            )
        rewards[i] = float(reward)
        infos.append(info)
        if not on_step(float(reward), info):
            return None
    return rewards, infos
