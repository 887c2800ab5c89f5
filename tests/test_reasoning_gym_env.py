"""grpo/ReasoningGym-v0: reasoning-gym's generators and scorers behind our env API: seeded,
with a held-out split, weighted composites, and the TRL / verl integrations."""

from __future__ import annotations

import sys
import warnings
from collections import Counter
from pathlib import Path

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import grpo_envs  # noqa: F401 - registers the ids

pytest.importorskip("reasoning_gym", reason="grpo/ReasoningGym-v0 needs the optional reasoning-gym package")

ENV_ID = "grpo/ReasoningGym-v0"


def _questions(env: gym.Env) -> list[str]:
    tasks = env.unwrapped.tasks
    return [tasks[i].reference["question"] for i in range(len(tasks))]


def test_tasks_are_seeded_and_the_test_split_is_held_out() -> None:
    train = gym.make(ENV_ID, dataset="basic_arithmetic", num_tasks=200, seed=3)
    again = gym.make(ENV_ID, dataset="basic_arithmetic", num_tasks=200, seed=3)
    other = gym.make(ENV_ID, dataset="basic_arithmetic", num_tasks=200, seed=4)
    test = gym.make(ENV_ID, dataset="basic_arithmetic", num_tasks=200, seed=3, split="test")
    assert _questions(train) == _questions(again)
    assert _questions(train) != _questions(other)
    assert not set(_questions(train)) & set(_questions(test))
    assert train.unwrapped.tasks[0].id == "rg-basic_arithmetic-train-00000"
    assert test.unwrapped.tasks[7].id == "rg-basic_arithmetic-test-00007"
    # Episodes are seeded by reset, as in every env.
    assert train.reset(seed=11)[0] == again.reset(seed=11)[0]


def test_the_generators_scorer_decides_the_reward() -> None:
    env = gym.make(ENV_ID, dataset="leg_counting", num_tasks=10)
    prompt, info = env.reset(seed=0, options={"task_id": 2})
    assert prompt.endswith("Give only your final answer inside <answer></answer> tags.")
    answer = env.unwrapped.task.reference["answer"]
    cases = {
        f"Counting legs... <answer>{answer}</answer>": (1.0, "correct"),
        "<answer>-1</answer>": (0.0, "wrong"),
        f"The answer is {answer}.": (0.0, "parse_failed"),  # no tags: reasoning-gym's format is the contract
        f"<answer>7</answer> no, <answer>{answer}</answer>": (1.0, "correct"),  # the last tags count
    }
    for completion, (reward, reason) in cases.items():
        env.reset(options={"task_id": 2})
        _, got, terminated, truncated, info = env.step(completion)
        assert (got, info["reason"], terminated, truncated) == (reward, reason, True, False), completion
        assert info["reference"] == answer
    env.reset(options={"task_id": 2})
    _, got, _, _, info = env.step(f"<answer>{answer} legs</answer>")  # reasoning-gym gives partial credit
    assert 0.0 < got < 1.0 and info["reason"] == "partial" and info["correct"] is False


def test_composite_draws_generators_by_weight_and_scores_each_with_its_own() -> None:
    env = gym.make(ENV_ID, dataset={"basic_arithmetic": 3, "leg_counting": 1}, num_tasks=400, seed=0)
    tasks = env.unwrapped.tasks
    sources = Counter(tasks[i].meta["source_dataset"] for i in range(len(tasks)))
    assert set(sources) == {"basic_arithmetic", "leg_counting"}
    assert 0.68 < sources["basic_arithmetic"] / 400 < 0.82  # weight 3 of 4, 400 draws
    assert tasks[0].id.startswith("rg-composite-train-")
    for index in range(6):
        env.reset(options={"task_id": index})
        assert env.step(f"<answer>{tasks[index].reference['answer']}</answer>")[1] == 1.0
    configured = gym.make(
        ENV_ID,
        dataset={"basic_arithmetic": 1, "chain_sum": 1},
        config={"basic_arithmetic": {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1}},
        num_tasks=50,
    )
    arithmetic = [
        t for t in (configured.unwrapped.tasks[i] for i in range(50)) if t.meta["source_dataset"] == "basic_arithmetic"
    ]
    assert arithmetic and all(t.reference["metadata"]["num_terms"] == 2 for t in arithmetic)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dataset": "chain_sum", "split": "test", "num_tasks": 20},
        {"dataset": {"basic_arithmetic": 1.0, "word_sorting": 2.0}, "num_tasks": 20, "seed": 5},
    ],
)
def test_check_env_passes(kwargs: dict) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = gym.make(ENV_ID, **kwargs)
        check_env(env.unwrapped)
        env.close()


def test_bad_settings_say_what_is_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match=r"unknown reasoning-gym dataset\(s\) \['no_such_generator'\]"):
        gym.make(ENV_ID, dataset="no_such_generator")
    with pytest.raises(ValueError, match="composite weights must be positive"):
        gym.make(ENV_ID, dataset={"basic_arithmetic": 1, "leg_counting": 0})
    with pytest.raises(ValueError, match=r"\['chain_sum'\] are not in dataset"):
        gym.make(ENV_ID, dataset={"basic_arithmetic": 1}, config={"chain_sum": {}})
    with pytest.raises(ValueError, match="reasoning-gym refused the settings of 'basic_arithmetic'"):
        gym.make(ENV_ID, dataset="basic_arithmetic", config={"no_such_setting": 1})
    with pytest.raises(ValueError, match="split must be one of"):
        gym.make(ENV_ID, split="validation")
    monkeypatch.setitem(sys.modules, "reasoning_gym", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r"pip install 'grpo-gym\[reasoning-gym\]'"):
        gym.make(ENV_ID)


def test_trl_and_verl_integrations_score_it_like_the_env(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    from grpo_envs.integrations.trl import env_reward_function
    from grpo_envs.integrations.verl import compute_score, export_verl_parquet

    kwargs = {"dataset": {"basic_arithmetic": 1, "leg_counting": 1}, "num_tasks": 8, "seed": 2}
    env = gym.make(ENV_ID, **kwargs)
    tasks = env.unwrapped.tasks
    completions = [
        f"<answer>{tasks[i].reference['answer']}</answer>" if i % 2 else "<answer>0.5</answer>" for i in range(8)
    ]
    expected = []
    for i, text in enumerate(completions):
        env.reset(options={"task_id": i})
        _, reward, _, _, info = env.step(text)
        expected.append((float(reward), info["reason"]))
    reward = env_reward_function(ENV_ID, **kwargs)
    assert reward(completions=completions, task_index=list(range(8))) == [r for r, _ in expected]
    rows = pd.read_parquet(export_verl_parquet(ENV_ID, tmp_path / "rg.parquet", **kwargs))
    assert set(rows["ability"]) == {"reasoning_gym"}
    scored = [
        compute_score(row["data_source"], text, row["reward_model"]["ground_truth"], row["extra_info"])
        for (_, row), text in zip(rows.iterrows(), completions)
    ]
    assert [(s["score"], s["reason"]) for s in scored] == expected
