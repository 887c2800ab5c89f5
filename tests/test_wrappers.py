"""DiscreteChoiceWrapper: text bandits as Discrete contextual bandits, for SB3 and tabular GRPO."""

from __future__ import annotations

import subprocess
import sys
import warnings

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3 import PPO

import grpo_envs  # noqa: F401 - registers grpo/Bandit-v0
from grpo_agent import GRPO
from grpo_envs import RewardFnEnv, Task
from grpo_envs.wrappers import DiscreteChoiceWrapper

TASKS = [("2+2?", "4"), ("3+3?", "6"), ("1+4?", "5")]


def _text_env() -> RewardFnEnv:
    return RewardFnEnv(TASKS, lambda completion, ref: completion == ref)


def test_wrapper_maps_indices_to_completions_and_passes_check_env() -> None:
    env = DiscreteChoiceWrapper(_text_env(), choices=["4", "5", "6"])
    assert env.observation_space == gym.spaces.Discrete(3) and env.action_space == gym.spaces.Discrete(3)
    obs, info = env.reset(options={"task_id": 1})
    assert obs == 1 and info["task_id"] == 1
    _, reward, terminated, _, info = env.step(2)
    assert reward == 1.0 and terminated and info["completion"] == "6"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any checker warning fails, except that this is a wrapper
        warnings.filterwarnings("ignore", message=".*different from the unwrapped version")
        check_env(env, skip_render_check=True)


def test_per_task_choices_and_errors() -> None:
    def choices(task: Task) -> list[str]:
        return [task.reference, "0"]

    env = DiscreteChoiceWrapper(_text_env(), choices=choices, n_choices=2)
    env.reset(options={"task_id": 2})
    assert env.step(0)[1] == 1.0
    with pytest.raises(ValueError, match="n_choices"):
        DiscreteChoiceWrapper(_text_env(), choices=choices)
    with pytest.raises(ValueError, match="out of range"):
        env.reset()
        env.step(5)
    with pytest.raises(gym.error.ResetNeeded):
        DiscreteChoiceWrapper(_text_env(), choices=["4"]).step(0)


def test_sb3_ppo_and_tabular_grpo_train_on_wrapped_and_toy_envs() -> None:
    # SB3's PPO, unchanged, on the toy bandit and on a wrapped text bandit.
    PPO("MlpPolicy", gym.make("grpo/Bandit-v0"), n_steps=64, batch_size=32, n_epochs=1, seed=0).learn(128)
    wrapped = DiscreteChoiceWrapper(_text_env(), choices=["4", "5", "6"])
    PPO("MlpPolicy", wrapped, n_steps=64, batch_size=32, n_epochs=1, seed=0).learn(128)
    model = GRPO("tabular", wrapped, learning_rate=0.2, group_size=4, n_groups=8, seed=0, device="cpu").learn(2048)
    assert [model.predict(s, deterministic=True)[0] for s in range(3)] == [0, 2, 1]


def test_wrappers_module_does_not_import_torch() -> None:
    code = "import sys, grpo_envs.wrappers; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
