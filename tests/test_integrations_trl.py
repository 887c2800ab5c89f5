"""grpo_envs.integrations.trl: env tasks as a TRL dataset, the env's verifier as a TRL reward
function, and TRL's own GRPOTrainer training two steps with them."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

import grpo_envs  # noqa: F401 - registers the ids
from grpo_envs.integrations.trl import (
    AsyncEnvRewardFunction,
    EnvRewardFunction,
    completion_text,
    env_dataset,
    env_reward_function,
)

pytest.importorskip("datasets", reason="env_dataset builds a datasets.Dataset (the 'test' extra)")

MATH = {"levels": 1, "num_tasks": 16}


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def _env_reward(env_id: str, env_kwargs: dict[str, Any], index: int, completion: str) -> tuple[float, str]:
    """The reward and reason that env.reset(task) + env.step(completion) give."""
    env = gym.make(env_id, **env_kwargs)
    env.reset(seed=0, options={"task_id": index})
    _, reward, _, _, info = env.step(completion)
    env.close()
    return float(reward), info["reason"]


def _tool_call_answer(reference: dict[str, Any]) -> str:
    calls = []
    for call in reference["ground_truth"]:
        ((name, params),) = call.items()
        calls.append({"name": name, "arguments": {k: v[0] for k, v in params.items() if v[0] != ""}})
    return "".join(f"<tool_call>{json.dumps(c)}</tool_call>" for c in calls) or "[]"


# -- the dataset ------------------------------------------------------------------------------------


def test_dataset_holds_every_task_with_its_index_and_id() -> None:
    env = gym.make("grpo/Math-v0", **MATH).unwrapped
    dataset = env_dataset("grpo/Math-v0", **MATH)
    assert dataset.column_names == ["prompt", "task_index", "task_id"]
    assert len(dataset) == env.num_tasks == 16
    for row in dataset:
        task = env.tasks[row["task_index"]]
        assert row["prompt"] == [{"role": "user", "content": task.prompt}]
        assert row["task_id"] == task.id
    plain = env_dataset(env, conversational=False, limit=3)
    assert plain["prompt"] == [env.tasks[i].prompt for i in range(3)]


# -- the reward function ----------------------------------------------------------------------------


def test_reward_scores_each_completion_against_its_own_row() -> None:
    env = gym.make("grpo/Math-v0", **MATH).unwrapped
    reward = env_reward_function("grpo/Math-v0", **MATH)
    rows = env_dataset("grpo/Math-v0", **MATH).shuffle(seed=1)[:8]  # rows in any order
    right = [_assistant(f"\\boxed{{{env.tasks[i].reference}}}") for i in rows["task_index"]]
    assert reward(prompts=rows["prompt"], completions=right, task_index=rows["task_index"]) == [1.0] * 8
    # The same answers against the neighbouring rows' tasks are wrong wherever the references differ.
    shifted = rows["task_index"][1:] + rows["task_index"][:1]
    expected = [float(env.tasks[a].reference == env.tasks[b].reference) for a, b in zip(rows["task_index"], shifted)]
    assert reward(completions=right, task_index=shifted) == expected
    assert 0.0 in expected


@pytest.mark.parametrize(
    ("env_id", "env_kwargs"),
    [
        ("grpo/Math-v0", MATH),
        ("grpo/ToolCall-v0", {"num_tasks": 12}),
        ("grpo/Code-v0", {"levels": [1]}),
        ("grpo/ToolUse-v0", {"num_tasks": 4, "isolate_tools": False}),
    ],
)
def test_reward_and_reasons_are_the_envs(env_id: str, env_kwargs: dict[str, Any]) -> None:
    env = gym.make(env_id, **env_kwargs).unwrapped
    reward = env_reward_function(env_id, **env_kwargs)
    indices, completions = [], []
    for index in range(min(4, env.num_tasks)):
        reference = env.tasks[index].reference
        if env_id == "grpo/Math-v0":
            right = f"\\boxed{{{reference}}}"
        elif env_id == "grpo/ToolCall-v0":
            right = _tool_call_answer(reference)
        elif env_id == "grpo/Code-v0":
            right = f"```python\n{reference.solution}\n```"
        else:
            right = f"Answer: {reference['answer']}"
        for text in (right, "I do not know", ""):
            indices.append(index)
            completions.append(text)
    metrics: dict[str, float] = {}
    columns: dict[str, list[Any]] = {}
    rewards = reward(
        completions=completions,
        task_index=indices,
        log_metric=metrics.__setitem__,
        log_extra=columns.__setitem__,
    )
    expected = [_env_reward(env_id, env_kwargs, i, c) for i, c in zip(indices, completions)]
    assert rewards == [r for r, _ in expected]
    assert 1.0 in rewards and 0.0 in rewards
    name = reward.__name__
    assert columns == {f"{name}_reason": [reason for _, reason in expected]}
    # One fraction per reason; the shared reasons are always there, so TRL averages true fractions.
    assert {"correct", "wrong", "parse_failed", "timeout", "error"} <= {k.split("/")[-1] for k in metrics}
    assert sum(metrics.values()) == pytest.approx(1.0)
    assert metrics[f"reasons/{name}/correct"] == pytest.approx(rewards.count(1.0) / len(rewards))


def test_reward_is_safe_to_call_from_several_threads_and_as_a_coroutine() -> None:
    env = gym.make("grpo/Math-v0", **MATH).unwrapped
    reward = env_reward_function(env)
    batches = []
    for start in range(8):
        indices = [(start + k) % 16 for k in range(6)]
        batches.append((indices, [f"\\boxed{{{env.tasks[(i + start % 2) % 16].reference}}}" for i in indices]))
    sequential = [reward(completions=c, task_index=i) for i, c in batches]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(lambda b: reward(completions=b[1], task_index=b[0]), batches))
    assert threaded == sequential
    assert any(1.0 in r for r in sequential) and any(0.0 in r for r in sequential)

    async_reward = env_reward_function(env, asynchronous=True, name="math")
    assert isinstance(async_reward, AsyncEnvRewardFunction) and async_reward.__name__ == "math"

    async def gather() -> list[list[float]]:
        return await asyncio.gather(*(async_reward(completions=c, task_index=i) for i, c in batches))

    assert asyncio.run(gather()) == sequential


def test_completion_text_reads_trl_completions() -> None:
    assert completion_text("plain") == "plain"
    conversation = [
        {"role": "assistant", "content": "first"},
        {"role": "tool", "content": "42"},
        {"role": "assistant", "content": [{"type": "text", "text": "Answer: "}, {"type": "text", "text": "42"}]},
    ]
    assert completion_text(conversation) == "Answer: 42"
    assert completion_text([{"role": "user", "content": "no reply"}]) == ""
    openai_call = {"type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}
    text = completion_text([{"role": "assistant", "content": "", "tool_calls": [openai_call]}])
    assert text == '<tool_call>{"name": "f", "arguments": {"x": 1}}</tool_call>'


def test_bad_input_says_what_is_wrong() -> None:
    with pytest.raises(gym.error.Error, match="NoSuch"):
        env_reward_function("grpo/NoSuch-v0")
    with pytest.raises(TypeError, match=r"grpo/Bandit-v0 is not a text environment"):
        env_reward_function("grpo/Bandit-v0")
    with pytest.raises(TypeError, match="not a text environment"):
        env_dataset("grpo/Bandit-v0")
    reward = env_reward_function("grpo/Math-v0", **MATH)
    with pytest.raises(KeyError, match="task_index column"):
        reward(prompts=["p"], completions=["c"])
    with pytest.raises(ValueError, match="same env id and keyword arguments"):
        reward(completions=["c"], task_index=[0], task_id=["math-train-L1-00005"])
    with pytest.raises(IndexError, match="out of range"):
        reward(completions=["c"], task_index=[16])
    with pytest.raises(TypeError, match="a completion must be a str or a list of message dicts"):
        reward(completions=[42], task_index=[0])
    assert isinstance(reward, EnvRewardFunction)


# -- TRL's GRPOTrainer -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The built-in tiny model (random weights) and its tokenizer, saved to a folder: TRL loads
    models by path, and rebuilds nothing from a hub."""
    from grpo_agent.policies.tiny import TinyConfig, build_char_tokenizer, build_tiny_model

    folder = tmp_path_factory.mktemp("tiny")
    tokenizer = build_char_tokenizer()
    build_tiny_model(tokenizer, TinyConfig(hidden_size=32, num_hidden_layers=1, intermediate_size=64)).save_pretrained(
        folder
    )
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_trl_grpo_trainer_trains_two_steps_with_our_reward(
    tiny_model_dir: str, tmp_path: Path, asynchronous: bool
) -> None:
    pytest.importorskip("trl", reason="TRL is in the 'test' extra")
    from trl import GRPOConfig, GRPOTrainer

    names = {f.name for f in dataclasses.fields(GRPOConfig)}
    checkpointing = "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
    config = GRPOConfig(
        **{checkpointing: False},
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=8,
        max_steps=2,
        learning_rate=1e-3,
        beta=0.0,
        loss_type="grpo",
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        use_cpu=True,
        bf16=False,
        seed=0,
        dataloader_num_workers=0,
    )
    # The async form runs on TRL's own event loop (TRL detects a coroutine __call__).
    reward = env_reward_function("grpo/Math-v0", name="math", asynchronous=asynchronous, **MATH)
    trainer = GRPOTrainer(
        model=tiny_model_dir,
        reward_funcs=reward,  # the callable object itself, as a user passes it
        args=config,
        train_dataset=env_dataset("grpo/Math-v0", **MATH),
    )
    trainer.train()
    assert trainer.state.global_step == 2
    logged = [entry for entry in trainer.state.log_history if "rewards/math/mean" in entry]
    assert len(logged) == 2
    for entry in logged:
        fractions = {k: v for k, v in entry.items() if k.startswith("reasons/math/")}
        assert {"reasons/math/correct", "reasons/math/parse_failed"} <= set(fractions)
        assert sum(fractions.values()) == pytest.approx(1.0)
        assert entry["reasons/math/correct"] == pytest.approx(entry["rewards/math/mean"])
