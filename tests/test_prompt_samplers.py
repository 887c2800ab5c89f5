"""Prompt samplers: what they draw, what they skip, and GRPO with them."""

from __future__ import annotations

import zipfile
from typing import Any

import cloudpickle
import gymnasium as gym
import numpy as np
import pytest

import grpo_envs  # noqa: F401 - registers the grpo/* ids
from grpo_agent import GRPO
from grpo_agent.common.prompt_samplers import (
    DifficultyPromptSampler,
    SimilarityPromptSampler,
    UniformPromptSampler,
    make_prompt_sampler,
)


def _cycling_reset(infos: list[dict[str, Any]]) -> Any:
    """A reset that returns the given tasks in turn."""
    state = {"k": -1}

    def reset() -> tuple[str, dict[str, Any]]:
        state["k"] += 1
        info = infos[state["k"] % len(infos)]
        return f"prompt {info['task_id']}", info

    return reset


TASKS = [{"task_id": k, "level": 1 + k % 3, "family": "arith" if k < 6 else "algebra"} for k in range(9)]


def test_difficulty_skips_tasks_that_were_always_solved_or_never_solved() -> None:
    sampler = DifficultyPromptSampler()
    sampler.update([0, 1, 2], np.array([[1.0, 1.0], [0.0, 0.0], [1.0, 0.0]]))
    _, ids = sampler.draw(_cycling_reset(TASKS), 6, "GRPO")
    assert ids == [2, 3, 4, 5, 6, 7]  # 0 (always solved) and 1 (never solved) skipped, 2 kept
    assert sampler.last_stats == {"draws": 8, "accepted": 6, "filled": 0}


def test_difficulty_fills_when_too_few_tasks_pass_and_can_keep_some() -> None:
    sampler = DifficultyPromptSampler(max_draws_per_prompt=2)
    sampler.update(list(range(9)), np.ones((9, 2)))  # everything solved
    _, ids = sampler.draw(_cycling_reset(TASKS), 3, "GRPO")
    assert len(ids) == 3 and sampler.last_stats["filled"] == 3
    keeping = DifficultyPromptSampler(keep_probability=1.0)
    keeping.update(list(range(9)), np.ones((9, 2)))
    keeping.draw(_cycling_reset(TASKS), 3, "GRPO")
    assert keeping.last_stats["filled"] == 0
    with pytest.raises(ValueError, match="keep_probability"):
        DifficultyPromptSampler(keep_probability=2.0)


def test_curriculum_starts_easy_and_moves_up_when_the_level_is_learnt() -> None:
    sampler = DifficultyPromptSampler(curriculum=True, window=1, promote_at=0.6)
    _, ids = sampler.draw(_cycling_reset(TASKS), 3, "GRPO")
    assert [TASKS[k]["level"] for k in ids] == [1, 1, 1]
    for _ in range(8):  # level 1 learnt
        sampler.update(ids, np.full((3, 2), 0.8))
    _, ids = sampler.draw(_cycling_reset(TASKS), 6, "GRPO")
    assert sampler.level == 2 and {TASKS[k]["level"] for k in ids} <= {1, 2}


def test_similarity_groups_an_update_by_key() -> None:
    _, ids = SimilarityPromptSampler(key="family").draw(_cycling_reset(TASKS), 4, "GRPO")
    assert {TASKS[k]["family"] for k in ids} == {"arith"}
    _, ids = SimilarityPromptSampler(key=lambda info: info["level"]).draw(_cycling_reset(TASKS), 3, "GRPO")
    assert {TASKS[k]["level"] for k in ids} == {1}
    with pytest.raises(ValueError, match="no 'colour' entry"):
        SimilarityPromptSampler(key="colour").draw(_cycling_reset(TASKS), 2, "GRPO")


def test_samplers_by_name_and_their_errors() -> None:
    assert isinstance(make_prompt_sampler("uniform"), UniformPromptSampler)
    assert isinstance(make_prompt_sampler("difficulty"), DifficultyPromptSampler)
    with pytest.raises(ValueError, match="prompt_sampler='hardest'"):
        make_prompt_sampler("hardest")
    with pytest.raises(ValueError, match="task_id"):
        DifficultyPromptSampler().draw(lambda: ("p", {}), 1, "GRPO")


def test_grpo_trains_with_each_sampler_and_saves_it(tmp_path: Any) -> None:
    env = gym.make("grpo/Math-v0", levels=[1, 2], num_tasks=40)
    for name in ("difficulty", "similarity"):
        model = GRPO("tabular", gym.make("grpo/Bandit-v0"), learning_rate=0.1, seed=0, prompt_sampler="difficulty")
        model.learn(256)
        assert model.num_timesteps == 256
        obs, ids = make_prompt_sampler(name).draw(lambda: env.reset(), 4, "GRPO")
        assert len(obs) == len(ids) == 4
    model.save(tmp_path / "agent")
    with zipfile.ZipFile(tmp_path / "agent.zip") as archive:
        saved = cloudpickle.loads(archive.read("data.pkl"))
    assert isinstance(saved["prompt_sampler"], DifficultyPromptSampler) and saved["prompt_sampler"].history
