"""Every registered grpo/* id passes Gymnasium's env checker, with every warning an error."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import warnings

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import grpo_envs  # noqa: F401 - registers the ids

#: Ids whose env needs an optional package, and that package.
OPTIONAL = {"grpo/ReasoningGym-v0": "reasoning_gym"}


def _param(env_id: str) -> object:
    module = OPTIONAL.get(env_id)
    if module is not None and importlib.util.find_spec(module) is None:
        reason = f"{env_id} needs the optional {module} package (pip install 'grpo-gym[reasoning-gym]')"
        return pytest.param(env_id, marks=pytest.mark.skip(reason=reason))
    return env_id


GRPO_IDS = sorted(env_id for env_id in gym.registry if env_id.startswith("grpo/"))
PARAMS = [_param(env_id) for env_id in GRPO_IDS]


def test_expected_ids_are_registered() -> None:
    assert "grpo/Bandit-v0" in GRPO_IDS
    assert "grpo/Math-v0" in GRPO_IDS


@pytest.mark.parametrize("env_id", PARAMS)
def test_check_env(env_id: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = gym.make(env_id)
        try:
            check_env(env.unwrapped)
        finally:
            env.close()
            env.close()  # closing twice must be harmless


@pytest.mark.parametrize("env_id", PARAMS)
def test_sampled_action_scores_zero_without_crashing(env_id: str) -> None:
    env = gym.make(env_id)
    env.reset(seed=0)
    env.action_space.seed(0)
    _, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert isinstance(terminated, bool) and isinstance(truncated, bool)
    if env_id != "grpo/Bandit-v0":  # a random Discrete action may be the right one
        assert reward == 0.0
        assert info["correct"] is False
    env.close()


def test_make_with_module_prefix_needs_no_import() -> None:
    """``gym.make("grpo_envs:grpo/...")`` imports the package itself (Gymnasium 1.x has no plugins)."""
    code = (
        "import gymnasium as gym, sys\n"
        "assert 'grpo_envs' not in sys.modules\n"
        "env = gym.make('grpo_envs:grpo/Bandit-v0')\n"
        "print(env.reset(seed=0)[1]['task_id'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().isdigit()


def test_grpo_envs_does_not_import_torch_nor_datasets() -> None:
    code = (
        "import sys, gymnasium as gym, grpo_envs\n"
        "import importlib.util\n"
        "optional = {'grpo/ReasoningGym-v0': 'reasoning_gym'}\n"
        "for env_id in [i for i in gym.registry if i.startswith('grpo/')]:\n"
        "    if env_id in optional and importlib.util.find_spec(optional[env_id]) is None:\n"
        "        continue\n"
        "    gym.make(env_id).close()\n"
        "print('torch' in sys.modules, 'datasets' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False False"
