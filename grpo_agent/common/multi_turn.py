"""Multi-turn rollouts: a language-model policy talks with an env for several turns per episode.

In a multi-turn env (``grpo/ToolUse-v0``) a step that does not end the episode returns the
env's reply (e.g. tool outputs) as the next observation. A group of ``G`` episodes on one
task is played in lock-step: every still-running episode's latest policy turn is stepped in
its own copy of the env, the replies are appended to the token sequences as context (masked
out of the loss), and the policy's next turns are sampled in one batch. The result is one
:class:`~grpo_agent.policies.base.CompletionBatch` row per episode whose mask covers exactly
the policy's own tokens of every turn, and the episode's total reward.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from grpo_agent.policies.base import CompletionBatch

#: Turns allowed per episode when the env does not say (``env.unwrapped.max_turns``).
DEFAULT_MAX_TURNS = 8


def is_multi_turn(env: gym.Env) -> bool:
    """Whether ``env`` declares more than one turn per episode (``unwrapped.max_turns > 1``)."""
    return int(getattr(env.unwrapped, "max_turns", 1) or 1) > 1


def _state_key(info: dict[str, Any], history: tuple[Any, ...]) -> tuple[Any, ...]:
    """The state a turn acts in: the env's ``info["state"]`` when it declares one (a Markov
    state, so that different paths to it meet), else what the env has shown so far."""
    return ("state", info["state"]) if info.get("state") is not None else history


class EnvPool:
    """Independent copies of an env, one per concurrent episode (each keeps its own state).

    Copies are built from the env's spec (``gym.make(env.spec)``, same arguments) or, for an
    env built by hand, with ``copy.deepcopy``; they are created on first need and reused.

    :param env: the env to copy; it is itself the pool's first member.
    """

    def __init__(self, env: gym.Env) -> None:
        self.env = env
        self.members: list[gym.Env] = [env]

    def take(self, n: int) -> list[gym.Env]:
        """``n`` distinct envs."""
        while len(self.members) < n:
            spec = getattr(self.env, "spec", None)
            self.members.append(gym.make(spec) if spec is not None else copy.deepcopy(self.env))
        return self.members[:n]

    def close(self) -> None:
        """Close the copies (not the original env)."""
        for member in self.members[1:]:
            member.close()
        self.members = [self.env]


@dataclass
class MultiTurnRollout:
    """What :func:`rollout_multi_turn` returns.

    :param completions: one row per episode; ``mask`` marks the policy's tokens of all turns.
    :param rewards: ``(rows,)`` each episode's total reward.
    :param infos: each episode's last step ``info``.
    :param turns: ``(rows,)`` policy turns per episode.
    :param turn_ends: per episode, the completion position (in ``completions.token_ids``) where
        each of its policy turns ends; turn ``t`` owns the policy tokens before ``turn_ends[t]``
        and at or after ``turn_ends[t - 1]``.
    :param turn_states: per episode, the state each turn acted in: the env's own state when its
        ``reset``/``step`` info has a hashable ``"state"`` entry (``("state", value)``), else the
        tuple of env observations seen so far (the prompt, then every reply), so that two
        episodes are in the same state when the env showed them the same things.
    :param turn_rewards: per episode, the reward of each turn's env step.
    """

    completions: CompletionBatch
    rewards: np.ndarray
    infos: list[dict[str, Any]]
    turns: np.ndarray
    turn_ends: list[list[int]] = field(default_factory=list)
    turn_states: list[list[tuple[Any, ...]]] = field(default_factory=list)
    turn_rewards: list[list[float]] = field(default_factory=list)


def rollout_multi_turn(
    policy: Any,
    envs: Sequence[gym.Env],
    observations: Sequence[Any],
    task_ids: Sequence[Any],
    n: int,
    *,
    max_turns: int | None = None,
    on_episode_end: Callable[[int, float, dict[str, Any]], bool] | None = None,
) -> MultiTurnRollout | None:
    """Play ``n`` episodes per task, in lock-step, with one env copy per episode.

    :param policy: a policy with ``sample`` and ``continue_turn``
        (:class:`~grpo_agent.policies.causal_lm.CausalLMPolicy`).
    :param envs: ``len(observations) * n`` distinct envs (see :class:`EnvPool`).
    :param observations: the first observation of each task.
    :param task_ids: each task's id, to pin ``reset(options={"task_id": ...})``.
    :param n: episodes per task (the GRPO group size).
    :param max_turns: policy turns at most (default: the env's ``max_turns``).
    :param on_episode_end: called as ``(row, reward, info)`` when an episode ends; returning
        False aborts the rollout (None is returned).
    """
    rows = len(observations) * n
    if len(envs) < rows:
        raise ValueError(f"need one env per episode: {rows} episodes, {len(envs)} envs")
    limit = max_turns or int(getattr(envs[0].unwrapped, "max_turns", DEFAULT_MAX_TURNS) or DEFAULT_MAX_TURNS)
    seen: list[tuple[Any, ...]] = []
    for i in range(rows):
        _, info = envs[i].reset(options={"task_id": task_ids[i // n]})
        seen.append(_state_key(info, (observations[i // n],)))
    batch = policy.sample(list(observations), n=n)
    rewards = np.zeros(rows)
    turns = np.zeros(rows, dtype=np.int64)
    infos: list[dict[str, Any]] = [{} for _ in range(rows)]
    running = [True] * rows
    turn_ends: list[list[int]] = [[] for _ in range(rows)]
    turn_states: list[list[tuple[Any, ...]]] = [[] for _ in range(rows)]
    turn_rewards: list[list[float]] = [[] for _ in range(rows)]
    for _ in range(limit):
        replies: list[str | None] = [None] * rows
        lengths = batch.extras["length"].tolist() if "length" in batch.extras else [batch.token_ids.shape[1]] * rows
        for i in range(rows):
            if not running[i]:
                continue
            observation, reward, terminated, truncated, info = envs[i].step(batch.actions[i])
            rewards[i] += float(reward)
            turns[i] += 1
            infos[i] = info
            turn_ends[i].append(int(lengths[i]))
            turn_states[i].append(seen[i])
            turn_rewards[i].append(float(reward))
            if terminated or truncated:
                running[i] = False
                if on_episode_end is not None and not on_episode_end(i, float(rewards[i]), info):
                    return None
            else:
                replies[i] = str(observation)
                seen[i] = _state_key(info, (*seen[i], replies[i]))
        if not any(running):
            break
        batch = policy.continue_turn(batch, replies)
    for i in range(rows):  # cut off by max_turns here: scored as they stand
        if running[i] and on_episode_end is not None and not on_episode_end(i, float(rewards[i]), infos[i]):
            return None
    return MultiTurnRollout(batch, rewards, infos, turns, turn_ends, turn_states, turn_rewards)


class MultiTurnCollector:
    """Plays groups of multi-turn episodes for an agent, one env copy per concurrent episode.

    Its state is the pool of env copies, built from the training env on first use and rebuilt
    when the env changes. It is not saved with the agent: a loaded agent builds a new one.
    """

    def __init__(self) -> None:
        self.pool: EnvPool | None = None

    def collect(
        self,
        policy: Any,
        env: gym.Env,
        observations: Sequence[Any],
        task_ids: Sequence[Any],
        group_size: int,
        on_step: Callable[[float, dict[str, Any]], bool],
    ) -> MultiTurnRollout | None:
        """``group_size`` episodes per task, played in lock-step (see :func:`rollout_multi_turn`).

        :param policy: a policy with ``sample`` and ``continue_turn``.
        :param env: the training env (copied once per concurrent episode).
        :param observations: each task's first observation.
        :param task_ids: each task's id.
        :param group_size: episodes per task.
        :param on_step: ``(reward, info) -> keep going``, once per finished episode.
        :return: the rollout, or None when ``on_step`` stopped it.
        """
        if self.pool is None or self.pool.env is not env:
            if self.pool is not None:
                self.pool.close()
            self.pool = EnvPool(env)
        return rollout_multi_turn(
            policy,
            self.pool.take(len(observations) * group_size),
            observations,
            task_ids,
            group_size,
            on_episode_end=lambda _row, reward, info: on_step(reward, info),
        )

    def close(self) -> None:
        """Close the env copies."""
        if self.pool is not None:
            self.pool.close()
            self.pool = None
