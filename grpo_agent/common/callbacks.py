"""Callbacks: stable-baselines3's own classes, plus the few that must know about completions.

The hooks are SB3's (``on_training_start``, ``on_rollout_start``, ``on_step`` after every
env step, i.e. every scored completion, ``on_rollout_end``, ``on_training_end``); returning
False from ``_on_step`` stops training. SB3's ``BaseCallback``, ``CallbackList``,
``CheckpointCallback``, ``EveryNTimesteps`` and ``StopTrainingOnMaxEpisodes`` work unchanged
with the agents here. SB3's progress bar and evaluation callbacks assume a ``VecEnv``, so
this module provides versions for plain Gymnasium envs.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, cast

import gymnasium as gym
import numpy as np
from stable_baselines3.common.callbacks import (
    BaseCallback,
    CallbackList,
    CheckpointCallback,
    ConvertCallback,
    EventCallback,
    EveryNTimesteps,
    StopTrainingOnRewardThreshold,
)
from stable_baselines3.common.callbacks import (
    ProgressBarCallback as _SB3ProgressBarCallback,
)
from tqdm import TqdmExperimentalWarning

from grpo_agent.common.evaluation import evaluate_policy


class ProgressBarCallback(_SB3ProgressBarCallback):
    """A live progress bar (tqdm + rich) over ``total_timesteps`` completions."""

    def _on_training_start(self) -> None:
        # tqdm.rich warns that it is experimental; SB3 silences that at import, which a
        # test runner's warning capture undoes.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TqdmExperimentalWarning)
            super()._on_training_start()

    def _on_step(self) -> bool:
        # One call per scored completion; SB3's version reads VecEnv.num_envs instead.
        self.pbar.update(1)
        return True


class EvalCallback(EventCallback):
    """Evaluate the agent every ``eval_freq`` completions and log ``eval/mean_reward``.

    :param eval_env: the env to evaluate on (a plain Gymnasium env, not a VecEnv).
    :param callback_on_new_best: called when the mean reward improves (e.g. SB3's
        ``StopTrainingOnRewardThreshold``).
    :param n_eval_episodes: episodes per evaluation.
    :param eval_freq: evaluate every this many completions (``on_step`` calls).
    :param best_model_save_path: if set, the best agent is saved there as ``best_model.zip``.
    :param deterministic: greedy actions during evaluation.
    :param verbose: 1 prints each evaluation.
    """

    def __init__(
        self,
        eval_env: gym.Env,
        callback_on_new_best: BaseCallback | None = None,
        n_eval_episodes: int = 20,
        eval_freq: int = 1000,
        best_model_save_path: str | None = None,
        deterministic: bool = True,
        verbose: int = 1,
    ) -> None:
        super().__init__(callback_on_new_best, verbose=verbose)
        self.eval_env = eval_env
        self.n_eval_episodes = n_eval_episodes
        self.eval_freq = eval_freq
        self.best_model_save_path = best_model_save_path
        self.deterministic = deterministic
        self.best_mean_reward = -np.inf
        self.last_mean_reward = -np.inf
        self.evaluations: list[tuple[int, float]] = []

    def _on_step(self) -> bool:
        if self.eval_freq <= 0 or self.n_calls % self.eval_freq != 0:
            return True
        mean, std = cast(
            "tuple[float, float]", evaluate_policy(self.model, self.eval_env, self.n_eval_episodes, self.deterministic)
        )
        self.last_mean_reward = float(mean)
        self.evaluations.append((self.num_timesteps, self.last_mean_reward))
        self.logger.record("eval/mean_reward", float(mean))
        self.logger.record("eval/std_reward", float(std))
        if self.verbose >= 1:
            print(f"Eval num_timesteps={self.num_timesteps}, episode_reward={mean:.3f} +/- {std:.3f}")
        if mean > self.best_mean_reward:
            self.best_mean_reward = float(mean)
            if self.best_model_save_path is not None:
                os.makedirs(self.best_model_save_path, exist_ok=True)
                self.model.save(os.path.join(self.best_model_save_path, "best_model"))
            return self._on_event()
        return True


def make_callback(callback: Any, progress_bar: bool = False) -> BaseCallback:
    """Normalise ``learn``'s ``callback`` argument (None, a list, a function or a callback)."""
    if isinstance(callback, list):
        callback = CallbackList(callback)
    if not isinstance(callback, BaseCallback):
        callback = ConvertCallback(callback)
    if progress_bar:
        callback = CallbackList([callback, ProgressBarCallback()])
    return callback


__all__ = [
    "BaseCallback",
    "CallbackList",
    "CheckpointCallback",
    "ConvertCallback",
    "EvalCallback",
    "EventCallback",
    "EveryNTimesteps",
    "ProgressBarCallback",
    "StopTrainingOnRewardThreshold",
    "make_callback",
]
