"""The main job (`grpo train` with no arguments): its configuration is the one docs/lm.md
documents, its task family (Math-v0 level 6) is scored like any other, and its warm start
stops at the documented target accuracy."""

from __future__ import annotations

import json
import pathlib
import re

import gymnasium as gym
import pytest
import torch

import grpo_envs  # noqa: F401 - registers the grpo/* ids
from grpo_agent import cli
from grpo_agent.policies.tiny import (
    SFTConfig,
    TinyConfig,
    reference_completion,
    split_off_check_tasks,
    warm_start_tiny,
)
from grpo_envs.tasks.math import ProceduralMathTasks, column_worked_answer

ROOT = pathlib.Path(__file__).resolve().parent.parent
SMALL = TinyConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)


def documented_main_job() -> dict:
    """The JSON block under "The main job's configuration" in docs/lm.md."""
    text = (ROOT / "docs" / "lm.md").read_text()
    match = re.search(r"<!-- main-job-config -->\s*```json\n(.*?)```", text, re.S)
    assert match, "docs/lm.md must hold the main job's configuration in a ```json block after <!-- main-job-config -->"
    return json.loads(match.group(1))


def test_the_default_job_is_the_documented_one():
    settings = cli.main_job_settings()
    env_kwargs, eval_kwargs, has_split = cli.resolve_env_kwargs(settings["env"], settings["env_kwargs"])
    actual = {**settings, "env_kwargs": env_kwargs, "heldout_env_kwargs": eval_kwargs}
    assert has_split and eval_kwargs["split"] == "test"
    assert actual == documented_main_job()


def test_level_6_questions_and_worked_answers_are_scored_by_the_verifier():
    assert column_worked_answer("168") == "861 168"
    assert column_worked_answer("-34") == "-43 -34"
    assert column_worked_answer("0") == "0 0"
    env = gym.make("grpo/Math-v0", levels=6, num_tasks=50)
    for k in range(50):
        task = env.unwrapped.tasks[k]
        a, op, b = re.fullmatch(r"What is (\d+) ([+-]) (\d+)\?\n.*", task.prompt, re.S).groups()
        assert 0 <= int(a) <= 99 and 0 <= int(b) <= 99
        assert int(task.reference) == (int(a) + int(b) if op == "+" else int(a) - int(b)) >= 0
        completion = reference_completion(env, task)
        assert completion == task.meta["worked_answer"]
        env.reset(options={"task_id": k})
        assert env.step(completion)[1] == 1.0
        env.reset(options={"task_id": k})
        assert env.step(completion.split()[0] + " " + str(int(task.reference) + 1))[1] == 0.0  # last number counts


def test_level_6_splits_never_share_a_question_and_level_1_is_unchanged():
    train = {ProceduralMathTasks(6, 3000, "train")[k].prompt for k in range(3000)}
    test = {ProceduralMathTasks(6, 1000, "test")[k].prompt for k in range(1000)}
    assert len(train) > 2400 and not train & test
    first = ProceduralMathTasks(1, 5, "train")[0]
    assert "worked_answer" not in first.meta and gym.make("grpo/Math-v0").unwrapped.tasks[0].meta["level"] in (
        1,
        2,
        3,
        4,
        5,
    )
    # The former main job still runs as it did: a fixed 600-step warm start, no target.
    assert cli.sft_settings("tiny", "grpo/Math-v0", '{"levels": 1}', None, None) == {}
    assert cli.sft_settings("tiny", "grpo/Math-v0", None, None, 0) == {"steps": 2000}


def test_check_tasks_are_kept_out_of_the_warm_start():
    env = gym.make("grpo/Math-v0", levels=6, num_tasks=400)
    kept, check = split_off_check_tasks(env, 30)
    assert len(check) == 30 and len({t.prompt for t in check}) == 30
    assert not {t.prompt for t in kept} & {t.prompt for t in check}
    with pytest.raises(ValueError, match="num_tasks"):
        split_off_check_tasks(gym.make("grpo/Math-v0", levels=6, num_tasks=20), 20)


def test_warm_start_stops_at_the_first_check_that_reaches_the_target(tmp_path):
    torch.set_num_threads(1)
    env = gym.make("grpo/Math-v0", levels=6, num_tasks=200)
    reached = SFTConfig(steps=40, batch_size=4, target_accuracy=0.0, check_every=10, check_tasks=8)
    path = warm_start_tiny(env, tiny=SMALL, sft_config=reached, cache_dir=tmp_path, max_new_tokens=4)
    info = json.loads((path / "warm_start.json").read_text())
    assert info["steps_taken"] == 10 and len(info["check_accuracy"]) == 1
    never = SFTConfig(steps=20, batch_size=4, target_accuracy=1.01, check_every=10, check_tasks=8)
    info = json.loads(
        (
            warm_start_tiny(env, tiny=SMALL, sft_config=never, cache_dir=tmp_path, max_new_tokens=4) / "warm_start.json"
        ).read_text()
    )
    assert info["steps_taken"] == 20 and [s for s, _ in info["check_accuracy"]] == [10, 20]
