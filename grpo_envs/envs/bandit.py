"""grpo/Bandit-v0: a contextual bandit on which every GRPO formula can be checked exactly."""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded

from grpo_envs.verify.result import CORRECT, WRONG


class ContextualBanditEnv(gym.Env[np.int64, np.int64]):
    """
    ## Description

    A one-step contextual bandit. Each episode draws a context (state) uniformly; the agent
    picks one of ``n_actions`` actions and receives that (state, action)'s mean reward plus
    optional Gaussian noise. Each state has exactly one best action, with mean reward 1.0; the
    other actions' means lie in ``[0, max_distractor_reward)``. The reward table is fixed by
    ``table_seed`` and exposed as :attr:`mean_rewards`, so expectations under any policy can be
    computed exactly (:meth:`expected_reward`): this is the toy on which the GRPO agent's
    formulas are verified and on which stable-baselines3's PPO runs unchanged.

    ## Action Space

    ``Discrete(n_actions)``.

    ## Observation Space

    ``Discrete(n_states)``: the context.

    ## Rewards

    ``mean_rewards[state, action] + noise_std * N(0, 1)``; the noise comes from the env's
    seeded RNG.

    ## Episode End

    Every episode ends after one step (``terminated=True``).

    ## Arguments

    - ``n_states`` (int, default 8): number of contexts.
    - ``n_actions`` (int, default 6): number of actions.
    - ``noise_std`` (float, default 0.1): standard deviation of the Gaussian reward noise.
    - ``max_distractor_reward`` (float, default 0.8): upper bound of the non-best actions' means.
    - ``table_seed`` (int, default 0): seed of the reward table (not of the episodes).
    - ``render_mode`` (None or ``"ansi"``).

    ## Version History

    - v0: initial version.
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        n_states: int = 8,
        n_actions: int = 6,
        noise_std: float = 0.1,
        max_distractor_reward: float = 0.8,
        table_seed: int = 0,
        render_mode: str | None = None,
    ) -> None:
        if n_states < 1 or n_actions < 2:
            raise ValueError(f"need n_states >= 1 and n_actions >= 2, got {n_states} and {n_actions}")
        if noise_std < 0:
            raise ValueError(f"noise_std must be >= 0, got {noise_std}")
        if not 0.0 <= max_distractor_reward < 1.0:
            raise ValueError(f"max_distractor_reward must be in [0, 1), got {max_distractor_reward}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r} is not supported; use 'ansi' or None")
        self.n_states, self.n_actions = n_states, n_actions
        self.noise_std = float(noise_std)
        self.render_mode = render_mode
        self.observation_space = spaces.Discrete(n_states)
        self.action_space = spaces.Discrete(n_actions)

        table_rng = np.random.default_rng(table_seed)
        self.mean_rewards = table_rng.uniform(0.0, max_distractor_reward, size=(n_states, n_actions))
        self.best_actions = table_rng.integers(n_actions, size=n_states)
        self.mean_rewards[np.arange(n_states), self.best_actions] = 1.0

        self._state: int | None = None
        self._last: tuple[int, int, float] | None = None

    # -- exact quantities, for tests and benchmarks ----------------------------------------

    def expected_reward(self, action_probs: np.ndarray) -> float:
        """Expected reward of a policy given as a ``(n_states, n_actions)`` probability table,
        under the uniform context distribution."""
        probs = np.asarray(action_probs, dtype=np.float64)
        if probs.shape != self.mean_rewards.shape:
            raise ValueError(f"action_probs must have shape {self.mean_rewards.shape}, got {probs.shape}")
        return float((probs * self.mean_rewards).sum(axis=1).mean())

    @property
    def optimal_expected_reward(self) -> float:
        """Expected reward of the best policy (always 1.0 by construction)."""
        return float(self.mean_rewards.max(axis=1).mean())

    # -- Gymnasium API ---------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.int64, dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        # "task_id" pins the context, as in the text envs: that is how GRPO forms groups.
        state = options.get("task_id", options.get("state"))
        if state is None:
            state = int(self.np_random.integers(self.n_states))
        elif not 0 <= int(state) < self.n_states:
            raise IndexError(f"options['task_id']={state} is out of range: this env has {self.n_states} states")
        self._state, self._last = int(state), None
        return np.int64(self._state), {"task_id": self._state}

    def step(self, action: Any) -> tuple[np.int64, SupportsFloat, bool, bool, dict[str, Any]]:
        if self._state is None:
            raise ResetNeeded("Cannot call env.step() before calling env.reset()")
        if isinstance(action, (str, bytes, float)) or action is None:
            raise TypeError(f"action must be an int in [0, {self.n_actions}), got {type(action).__name__}")
        action = int(np.asarray(action).item())
        if not self.action_space.contains(np.int64(action)):
            raise ValueError(f"action {action} is out of range: Bandit-v0 has {self.n_actions} actions")
        state = self._state
        mean = float(self.mean_rewards[state, action])
        reward = mean + (self.noise_std * float(self.np_random.standard_normal()) if self.noise_std else 0.0)
        best = int(self.best_actions[state])
        info = {
            "task_id": state,
            "correct": action == best,
            "reason": CORRECT if action == best else WRONG,
            "parsed": action,
            "reference": best,
            "mean_reward": mean,
        }
        self._last = (state, action, reward)
        self._state = None
        return np.int64(state), reward, True, False, info

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self._last is None:
            return None if self.render_mode != "ansi" else ""
        state, action, reward = self._last
        return f"state {state}: action {action} (best {self.best_actions[state]}), reward {reward:.3f}\n"
