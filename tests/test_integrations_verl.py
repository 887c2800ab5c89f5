"""grpo_envs.integrations.verl: tasks exported to verl's parquet layout and scored through
``compute_score`` the way verl's reward manager calls it give the env's own verdicts."""

from __future__ import annotations

import ast
import importlib.util
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

import grpo_envs  # noqa: F401 - registers the ids
from grpo_envs import RewardFnEnv
from grpo_envs.integrations import verl as grpo_verl
from grpo_envs.integrations.reference_codec import dumps_reference, loads_reference
from grpo_envs.tasks.code import CodeReference

pd = pytest.importorskip("pandas", reason="reading parquet back needs pandas (through the 'test' extra's datasets)")
pytest.importorskip("datasets", reason="export_verl_parquet writes with datasets, as verl's scripts do")

VERL_FILE = Path(grpo_verl.__file__)


def naive_reward_manager(rows: Any, responses: list[str], compute_score: Any) -> tuple[list[float], dict[str, list]]:
    """What verl's ``NaiveRewardManager.__call__`` does with each (row, decoded response): read
    ``reward_model.ground_truth``, ``data_source`` and ``extra_info`` (adding its own keys),
    call ``compute_score`` by keyword, and collect a dict result's keys as reward_extra_info."""
    rewards, extra = [], defaultdict(list)
    for (_, row), response in zip(rows.iterrows(), responses):
        extra_info = dict(row["extra_info"])
        extra_info["num_turns"] = None
        extra_info["rollout_reward_scores"] = {}
        score = compute_score(
            data_source=row["data_source"],
            solution_str=response,
            ground_truth=row["reward_model"]["ground_truth"],
            extra_info=extra_info,
        )
        if isinstance(score, dict):
            rewards.append(score["score"])
            for key, value in score.items():
                extra[key].append(value)
        else:
            rewards.append(score)
    # verl asserts that every reward_extra_info list is as long as the batch.
    assert all(len(values) == len(responses) for values in extra.values())
    return rewards, dict(extra)


def load_like_verl(path: Path, name: str = "compute_score") -> Any:
    """verl's ``get_custom_reward_fn``: import the file at ``custom_reward_function.path`` as a
    module named ``custom_module`` and take the function named ``custom_reward_function.name``."""
    spec = importlib.util.spec_from_file_location("custom_module", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


def _tool_call_answer(reference: dict[str, Any], spoil_one: bool = False) -> str:
    """The reference calls as an action; ``spoil_one`` makes one argument's value wrong (still
    schema-valid), which ``reward_mode="fraction"`` scores between 0 and 1."""
    calls = []
    for call in reference["ground_truth"]:
        ((name, params),) = call.items()
        arguments = {k: v[0] for k, v in params.items() if v[0] != ""}
        calls.append({"name": name, "arguments": arguments})
    if spoil_one and calls and calls[0]["arguments"]:
        key = sorted(calls[0]["arguments"])[0]
        value = calls[0]["arguments"][key]
        calls[0]["arguments"][key] = (
            (not value) if isinstance(value, bool) else value + 1 if isinstance(value, (int, float)) else f"{value}zz"
        )
    return "".join(f"<tool_call>{json.dumps(c)}</tool_call>" for c in calls) or "[]"


def _first_parameter(reference: CodeReference) -> str:
    """The entry point's first parameter: returning it passes some of a task's tests, not all."""
    tree = ast.parse(reference.prefix)
    function = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == reference.entry_point)
    return function.args.args[0].arg


def _completions(env_id: str, task: Any) -> list[str]:
    """A right answer, near misses that the verifier must tell apart, and junk."""
    reference = task.reference
    if env_id == "grpo/Math-v0":
        texts = [f"\\boxed{{{reference}}}", f"The answer is {reference}", "\\boxed{12345}"]
        if task.meta.get("answer_form") == "expanded":
            texts.append("\\boxed{(x+1)^2 - 2x - 1 - x^2 + " + reference + "}")  # right value, not expanded: wrong
    elif env_id == "grpo/Code-v0":
        texts = [f"```python\n{reference.solution}\n```", f"    return {_first_parameter(reference)}\n"]
        texts.append("import sys\nsys.exit(0)\n")
    elif env_id == "grpo/ToolCall-v0":
        texts = [_tool_call_answer(reference), _tool_call_answer(reference, spoil_one=True), "[]"]
    else:
        texts = [f"Answer: {reference['answer']}", "Answer: 0.5"]
    return [*texts, "", "I cannot say."]


CASES = [
    ("grpo/Math-v0", {"levels": [1, 3, 5], "num_tasks": 18, "split": "test"}),
    ("grpo/Code-v0", {"levels": [1, 2], "reward_mode": "fraction"}),
    ("grpo/ToolCall-v0", {"num_tasks": 16, "level": [1, 2], "reward_mode": "fraction"}),
    ("grpo/ToolUse-v0", {"num_tasks": 10, "isolate_tools": False}),
]


@pytest.mark.parametrize(("env_id", "env_kwargs"), CASES, ids=[c[0] for c in CASES])
def test_parquet_round_trip_gives_the_envs_verdicts(env_id: str, env_kwargs: dict[str, Any], tmp_path: Path) -> None:
    limit = 10
    path = grpo_verl.export_verl_parquet(env_id, tmp_path / "data" / "train.parquet", limit=limit, **env_kwargs)
    rows = pd.read_parquet(path)
    assert len(rows) == limit
    env = gym.make(env_id, **env_kwargs)
    responses, expected, picked = [], [], []
    for i, (_, row) in enumerate(rows.iterrows()):
        assert row["extra_info"]["index"] == i
        task = env.unwrapped.tasks[i]
        for text in _completions(env_id, task):
            env.reset(options={"task_id": i})
            _, reward, _, _, info = env.step(text)
            responses.append(text)
            expected.append((float(reward), info["reason"]))
            picked.append(i)
    env.close()
    batch = rows.iloc[picked]
    rewards, extra = naive_reward_manager(batch, responses, grpo_verl.compute_score)
    assert list(zip(rewards, extra["reason"])) == expected
    assert extra["acc"] == [r == 1.0 for r, _ in expected]
    assert set(extra) == {"score", "acc", "reason", "pred"}
    # The verdicts are not all alike: the near misses are told apart from the right answers.
    assert 1.0 in rewards and 0.0 in rewards
    if env_id == "grpo/Math-v0":  # an unexpanded polynomial is wrong only because of the task's meta
        assert any(reason == "wrong" and text.count("(x+1)^2") for text, (_, reason) in zip(responses, expected))
    if env_kwargs.get("reward_mode") == "fraction":  # the verifier setting travelled with the ground truth
        assert any(0.0 < r < 1.0 for r in rewards)


def test_verl_loads_compute_score_from_the_file_path(tmp_path: Path) -> None:
    rows = pd.read_parquet(grpo_verl.export_verl_parquet("grpo/ToolCall-v0", tmp_path / "t.parquet", limit=4))
    task = gym.make("grpo/ToolCall-v0").unwrapped.tasks[2]
    loaded = load_like_verl(VERL_FILE)
    rewards, extra = naive_reward_manager(rows.iloc[[2, 2]], [_tool_call_answer(task.reference), "x"], loaded)
    assert rewards == [1.0, 0.0]
    assert extra["reason"][0] == "correct"


def test_rows_follow_verls_gsm8k_layout() -> None:
    (row,) = grpo_verl.verl_rows("grpo/Math-v0", split="test", limit=1, levels=1, rel_tol=1e-3)
    assert set(row) == {"data_source", "prompt", "ability", "reward_model", "extra_info"}
    assert row["data_source"] == "grpo/Math-v0" and row["ability"] == "math"
    assert row["prompt"] == [{"role": "user", "content": row["prompt"][0]["content"]}]
    assert row["reward_model"]["style"] == "rule" and isinstance(row["reward_model"]["ground_truth"], str)
    assert row["extra_info"] == {"split": "test", "index": 0, "task_id": "math-test-L1-00000"}
    truth = json.loads(row["reward_model"]["ground_truth"])
    # Task-choosing kwargs stay out; verifier settings go in.
    assert truth["env_kwargs"] == {"rel_tol": 1e-3}
    assert [r["ability"] for r in grpo_verl.verl_rows("grpo/ToolCall-v0", limit=1)] == ["tool_call"]


def test_reference_codec_round_trips_what_the_verifiers_read() -> None:
    code = gym.make("grpo/Code-v0").unwrapped.tasks[0].reference
    assert isinstance(code, CodeReference)
    assert loads_reference(dumps_reference(code)) == code
    value = {"a": (1, [2, (3,)], {"b": None}), "c": 1.5}
    assert loads_reference(dumps_reference(value)) == value
    with pytest.raises(ValueError, match="only grpo_envs dataclasses"):
        loads_reference('{"__dataclass__": "os:DirEntry", "fields": {}}')
    with pytest.raises(TypeError, match=r"reference\['x'\] is a set"):
        dumps_reference({"x": {1}})


def test_bad_input_says_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not one grpo_envs wrote"):
        grpo_verl.compute_score("grpo/Math-v0", "\\boxed{1}", "1")
    with pytest.raises(TypeError, match="not a text environment"):
        grpo_verl.verl_rows("grpo/Bandit-v0")
    with pytest.raises(ValueError, match=r"was not made with gym\.make"):
        grpo_verl.verl_rows(RewardFnEnv([("Say hi", "hi")], lambda text, ref: text == ref))
    with pytest.raises(ValueError, match=r"sandbox=.* cannot be written"):
        grpo_verl.verl_rows("grpo/Code-v0", sandbox=object())
    with pytest.raises(gym.error.Error, match="NoSuch"):
        grpo_verl.export_verl_parquet("grpo/NoSuch-v0", tmp_path / "x.parquet")
