"""An env whose verifier kills its own process on one action, for the reward-worker tests."""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
from gymnasium import spaces


class DyingEnv(gym.Env[str, str]):
    """One task; ``step("die")`` ends the process (as a crashing verifier would), any other
    action scores its length."""

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self) -> None:
        self.observation_space = spaces.Text(8)
        self.action_space = spaces.Text(8)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        return "q", {"task_id": 0}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if action == "die":
            os._exit(1)
        return "q", float(len(action)), True, False, {"correct": True, "reason": "correct"}


gym.register("test/Dying-v0", entry_point="dying_env:DyingEnv")
