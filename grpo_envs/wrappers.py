"""Wrappers that let Discrete-space learners (stable-baselines3's PPO, a tabular policy) play
text environments. No torch here: ``grpo_envs`` never imports it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, SupportsFloat, cast

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from grpo_envs.core import TextBanditEnv
from grpo_envs.tasks.base import Task

ChoiceFn = Callable[[Task], Sequence[str]]


class DiscreteChoiceWrapper(gym.Wrapper[np.int64, np.int64, str, str]):
    """Turn a text bandit into a contextual bandit with Discrete spaces.

    The observation becomes the task index (``info["task_id"]``) and the action an index into
    a list of candidate completions, so ``PPO("MlpPolicy", DiscreteChoiceWrapper(env, ...))``
    from stable-baselines3 trains on it unchanged, and so does ``GRPO("tabular", ...)``.
    ``reset(options={"task_id": k})`` still pins the task.

    :param env: a text env whose ``reset`` puts an int index in ``info["task_id"]``
        (every :class:`~grpo_envs.core.TextBanditEnv`).
    :param choices: the candidate completions: one list for every task, or a function
        ``task -> list`` giving each task its own candidates (same length for all tasks).
    :param n_choices: the number of candidates; required when ``choices`` is a function.
    :param n_tasks: the number of tasks; defaults to ``env.unwrapped.num_tasks``.

    Example::

        >>> from grpo_envs import RewardFnEnv
        >>> from grpo_envs.wrappers import DiscreteChoiceWrapper
        >>> text_env = RewardFnEnv([("2+2?", "4"), ("3+3?", "6")], lambda c, ref: c == ref)
        >>> env = DiscreteChoiceWrapper(text_env, choices=["4", "5", "6"])
        >>> obs, info = env.reset(options={"task_id": 1})
        >>> int(obs), env.step(2)[1]
        (1, 1.0)
    """

    def __init__(
        self,
        env: gym.Env,
        choices: Sequence[str] | ChoiceFn,
        n_choices: int | None = None,
        n_tasks: int | None = None,
    ) -> None:
        super().__init__(env)
        if callable(choices):
            if n_choices is None:
                raise ValueError("n_choices is required when choices is a function of the task")
            self._choice_fn: ChoiceFn | None = choices
            self._choices: list[str] = []
        else:
            self._choice_fn, self._choices = None, list(choices)
            n_choices = len(self._choices)
            if any(not isinstance(c, str) for c in self._choices):
                raise TypeError("choices must be strings (the completions to send to the text env)")
        if n_choices < 1:
            raise ValueError("DiscreteChoiceWrapper needs at least one choice")
        n_tasks = n_tasks if n_tasks is not None else getattr(env.unwrapped, "num_tasks", None)
        if n_tasks is None:
            raise ValueError("pass n_tasks: the wrapped env does not report num_tasks")
        self.n_choices, self.n_tasks = int(n_choices), int(n_tasks)
        self.observation_space = spaces.Discrete(self.n_tasks)
        self.action_space = spaces.Discrete(self.n_choices)
        self._task_index: int | None = None

    def choices_for(self, task: Task) -> list[str]:
        """The candidate completions of ``task``."""
        if self._choice_fn is None:
            return self._choices
        options = list(self._choice_fn(task))
        if len(options) != self.n_choices:
            raise ValueError(
                f"the choices function returned {len(options)} choices for task {task.id!r}; expected {self.n_choices}"
            )
        return options

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.int64, dict[str, Any]]:
        _, info = self.env.reset(seed=seed, options=options)
        index = info.get("task_id")
        if not isinstance(index, (int, np.integer)) or not 0 <= int(index) < self.n_tasks:
            raise ValueError(f"the wrapped env's info['task_id'] must be an int in [0, {self.n_tasks}), got {index!r}")
        self._task_index = int(index)
        return np.int64(self._task_index), info

    def step(self, action: Any) -> tuple[np.int64, SupportsFloat, bool, bool, dict[str, Any]]:
        if self._task_index is None:
            raise gym.error.ResetNeeded("Cannot call env.step() before calling env.reset()")
        index = int(np.asarray(action).item())
        if not 0 <= index < self.n_choices:
            raise ValueError(f"action {index} is out of range: this wrapper has {self.n_choices} choices")
        if self._choice_fn is not None:
            task = cast(TextBanditEnv, self.env.unwrapped).task
            assert task is not None, "reset() ran, so the wrapped env holds a task"
            completion = self.choices_for(task)[index]
        else:
            completion = self._choices[index]
        text_env = cast(gym.Env[Any, str], self.env)  # the wrapped env takes text actions
        _, reward, terminated, truncated, info = text_env.step(completion)
        info = {**info, "completion": completion}
        return np.int64(self._task_index), reward, terminated, truncated, info
