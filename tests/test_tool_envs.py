"""grpo/ToolCall-v0 and grpo/ToolUse-v0: the Gymnasium contract, task generators, BFCL loading,
bad input, and scripted multi-turn episodes."""

from __future__ import annotations

import doctest
import json
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
from gymnasium.error import ResetNeeded
from gymnasium.utils.env_checker import check_env

import grpo_envs  # noqa: F401 - registers the ids
from grpo_envs.envs import tool_call as tool_call_env
from grpo_envs.envs import tool_use as tool_use_env
from grpo_envs.envs.tool_call import ToolCallEnv
from grpo_envs.envs.tool_use import ToolUseEnv, extract_final_answer, verify_final_answer
from grpo_envs.tasks import bfcl as bfcl_tasks
from grpo_envs.tasks.base import Task
from grpo_envs.tasks.tool_call import TOOL_USE_PROTOCOL, ToolCallTasks, ToolUseTasks, format_tool_prompt, load_bfcl
from grpo_envs.tools import base as tools_base
from grpo_envs.tools import default_toolbox
from grpo_envs.verify import tool_call as tool_call_verifier

FIXTURES = Path(__file__).parent / "fixtures" / "bfcl"


def oracle_action(ground_truth: list[dict[str, Any]]) -> str:
    """The reference calls written as the policy should write them (first acceptable value,
    optional parameters left out)."""
    if not ground_truth:
        return "[]"
    calls = []
    for entry in ground_truth:
        ((name, params),) = entry.items()
        arguments = {k: next(v for v in values if v != "") for k, values in params.items() if values[0] != ""}
        calls.append("<tool_call>" + json.dumps({"name": name, "arguments": arguments}) + "</tool_call>")
    return "\n".join(calls)


def tool_call(name: str, **arguments: Any) -> str:
    return "<tool_call>" + json.dumps({"name": name, "arguments": arguments}) + "</tool_call>"


# -- the Gymnasium contract --------------------------------------------------------------


@pytest.mark.parametrize(
    "env_id, kwargs",
    [
        ("grpo/ToolCall-v0", {}),
        ("grpo/ToolCall-v0", {"bfcl": str(FIXTURES / "BFCL_v4_simple_python.json"), "reward_mode": "fraction"}),
        ("grpo/ToolUse-v0", {"level": [1, 2, 3], "isolate_tools": False}),
    ],
)
def test_check_env_passes_with_every_warning_an_error(env_id: str, kwargs: dict[str, Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = gym.make(env_id, **kwargs)
        check_env(env.unwrapped)
        env.close()
        env.close()


@pytest.mark.parametrize("env_id", ["grpo/ToolCall-v0", "grpo/ToolUse-v0"])
def test_seeded_resets_and_task_ids_are_deterministic(env_id: str) -> None:
    a, b = gym.make(env_id), gym.make(env_id)
    assert [a.reset(seed=s)[0] for s in range(5)] == [b.reset(seed=s)[0] for s in range(5)]
    prompt, info = a.reset(options={"task_id": 7})
    assert info["task_id"] == 7 and prompt == a.unwrapped.tasks[7].prompt
    assert a.reset(options={"task_id": info["task_name"]})[0] == prompt
    assert ToolCallTasks(50, seed=3)[9] == ToolCallTasks(50, seed=3)[9]
    assert ToolCallTasks(50, seed=3)[9].prompt != ToolCallTasks(50, seed=4)[9].prompt


# -- ToolCall-v0 -------------------------------------------------------------------------


@pytest.mark.parametrize("level", [1, 2, 3])
def test_reference_calls_score_one_in_every_category(level: int) -> None:
    env = ToolCallEnv(level=level, num_tasks=80)
    seen = set()
    for k in range(80):
        prompt, info = env.reset(options={"task_id": k})
        task = env.unwrapped.task
        for spec in task.reference["tools"]:
            assert f'"name": "{spec["name"]}"' in prompt
        _, reward, terminated, truncated, step_info = env.step(oracle_action(task.reference["ground_truth"]))
        assert (reward, terminated, truncated) == (1.0, True, False), (task.id, step_info)
        seen.add(info["category"])
    assert seen == {"simple", "multiple", "parallel", "irrelevance"}


def test_generator_categories_have_their_shape() -> None:
    tasks = ToolCallTasks(40, level=3)
    for k in range(40):
        task = tasks[k]
        truth, names = task.reference["ground_truth"], [s["name"] for s in task.reference["tools"]]
        category = task.meta["category"]
        if category == "simple":
            assert len(truth) == 1 and len(names) == 1
        elif category == "multiple":
            assert len(truth) == 1 and len(names) > 1
        elif category == "parallel":
            assert len(truth) >= 3  # level 3 asks for 3 or 4 calls
        else:
            assert truth == [] and "empty list: []" in task.prompt


@pytest.mark.parametrize(
    "action, reason",
    [
        ('{"name": "calculate", "arguments": {"expression": "1+1"', "parse_failed"),
        ('<tool_call>{"name": "launch_missiles", "arguments": {}}</tool_call>', "unknown_function"),
        ('<tool_call>{"name": "date_diff", "arguments": {"start": "2024-01-01"}}</tool_call>', "invalid_arguments"),
        (
            '<tool_call>{"name": "date_diff", "arguments": {"start": 20240101, "end": "2024-01-02"}}</tool_call>',
            "invalid_arguments",
        ),
        ("[" * 100_000 + "]" * 100_000, "parse_failed"),  # over the action space's length
        ('{"name": "date_diff", "arguments": ' + "[" * 1000 + "]" * 1000 + "}", "parse_failed"),
        ("x" * 1_000_000, "parse_failed"),
    ],
)
def test_bad_input_scores_zero_with_a_reason(action: str, reason: str) -> None:
    task = Task(
        prompt="How many days from 2024-01-01 to 2024-03-01?",
        reference={
            "tools": [default_toolbox().tools["date_diff"].spec],
            "ground_truth": [{"date_diff": {"start": ["2024-01-01"], "end": ["2024-03-01"]}}],
        },
        id="days",
    )
    env = ToolCallEnv([task])
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step(action)
    assert (reward, terminated, info["correct"], info["reason"]) == (0.0, True, False, reason)


def test_info_names_the_wrong_argument_and_fraction_mode_gives_partial_credit() -> None:
    task = Task(
        prompt="p",
        id="t",
        reference={
            "tools": [default_toolbox().tools["date_diff"].spec],
            "ground_truth": [{"date_diff": {"start": ["2024-01-01"], "end": ["2024-03-01"]}}],
        },
    )
    action = tool_call("date_diff", start="2024-01-01", end="2024-03-02")
    binary, fraction = ToolCallEnv([task]), ToolCallEnv([task], reward_mode="fraction")
    binary.reset(seed=0), fraction.reset(seed=0)
    _, reward, _, _, info = binary.step(action)
    assert reward == 0.0 and info["reason"] == "wrong_value"
    assert info["mismatch"]["argument"] == "end" and info["mismatch"]["call_index"] == 0
    assert info["reference"] == task.reference["ground_truth"]
    assert fraction.step(action)[1] == pytest.approx(0.5)


def test_irrelevance_abstention_modes() -> None:
    strict = ToolCallEnv(categories=["irrelevance"], num_tasks=4)
    lenient = ToolCallEnv(categories=["irrelevance"], num_tasks=4, abstain="plain_text")
    assert "reply in plain text" in lenient.reset(seed=0)[0]
    strict.reset(seed=0)
    assert strict.step("Sorry, none of these tools can do that.")[4]["reason"] == "no_call"
    strict.reset(seed=0)
    assert strict.step("[]")[1] == 1.0
    assert lenient.step("Sorry, none of these tools can do that.")[1] == 1.0


def test_render_ansi_shows_the_exchange() -> None:
    env = gym.make("grpo/ToolCall-v0", render_mode="ansi")
    env.reset(seed=1)
    env.step("[]")
    text = env.render()
    assert "completion: []" in text and "reward:" in text


# -- BFCL loader -------------------------------------------------------------------------


def test_bfcl_fixtures_load_and_the_reference_scores_one() -> None:
    for name, category in [
        ("simple_python", "simple"),
        ("parallel_multiple", "parallel"),
        ("irrelevance", "irrelevance"),
    ]:
        env = ToolCallEnv(bfcl=FIXTURES / f"BFCL_v4_{name}.json")
        for k in range(env.num_tasks):
            _, info = env.reset(options={"task_id": k})
            assert info["category"] == category and info["bfcl_category"] == name and info["source"] == "bfcl"
            truth = env.unwrapped.tasks[k].reference["ground_truth"]
            assert env.step(oracle_action(truth))[1] == 1.0, env.unwrapped.tasks[k].id


def test_bfcl_edge_cases_from_fixtures() -> None:
    env = ToolCallEnv(bfcl=FIXTURES / "BFCL_v4_simple_python.json")
    scripted = [  # (task, action, reward, reason)
        (0, tool_call("geometry_rectangle_area", length=12, width=7.5), 1.0, "correct"),  # dots sent as underscores
        (0, tool_call("geometry.rectangle_area", length=12, width=7.5, unit="Meters"), 1.0, "correct"),
        (0, tool_call("geometry.rectangle_area", length=12, width=7.5, unit="ft"), 0.0, "wrong_value"),
        (1, tool_call("find_hotels", city="new york", check_in="2024-05-01", nights=3, guests=2), 1.0, "correct"),
        (1, tool_call("find_hotels", city="NYC", check_in="2024-05-01", nights=3), 0.0, "missing_argument"),
        (
            1,
            tool_call("find_hotels", city="NYC", check_in="2024-05-01", nights=3, guests=2, amenities=[]),
            1.0,
            "correct",
        ),
        (2, tool_call("sort_numbers", numbers=[5, 3, 9], descending=True), 1.0, "correct"),
        (2, tool_call("sort_numbers", numbers=[9, 5, 3], descending=True), 0.0, "wrong_value"),
    ]
    for k, action, reward, reason in scripted:
        env.reset(options={"task_id": k})
        _, got, _, _, info = env.step(action)
        assert (got, info["reason"]) == (reward, reason), (k, action, info)
    assert "[system] You are a helpful assistant." in env.unwrapped.tasks[2].prompt


def test_bfcl_parallel_calls_match_in_any_order() -> None:
    env = ToolCallEnv(bfcl=FIXTURES / "BFCL_v4_parallel_multiple.json")
    env.reset(seed=0)
    action = "\n".join(
        [
            tool_call("convert_currency", amount=100, from_currency="usd", to_currency="eur"),
            tool_call("get_stock_price", ticker="MSFT"),
            tool_call("get_stock_price", ticker="AAPL"),
        ]
    )
    assert env.step(action)[1] == 1.0


def test_bfcl_loader_errors_are_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match=r"multi_turn_base.*not supported"):
        load_bfcl(FIXTURES / "BFCL_v4_multi_turn_base.json")
    lonely = tmp_path / "BFCL_v4_simple_python.json"
    lonely.write_text((FIXTURES / "BFCL_v4_simple_python.json").read_text())
    with pytest.raises(FileNotFoundError, match="possible-answer"):
        load_bfcl(lonely)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_bfcl(tmp_path / "nothing.json")
    # A category name is looked up in the installed bfcl-eval package's data folder.
    monkeypatch.setattr(bfcl_tasks, "bfcl_data_dir", lambda: FIXTURES)
    assert [t.id for t in load_bfcl("simple_python", limit=2)] == ["simple_python_0", "simple_python_1"]
    with pytest.raises(FileNotFoundError, match="no BFCL category 'multiple'"):
        load_bfcl("multiple")  # only parallel_multiple exists there: a name must match whole
    with pytest.raises(FileNotFoundError, match="known categories"):
        load_bfcl("live_simple")


# -- ToolUse-v0 --------------------------------------------------------------------------

SHOP = Task(
    prompt=format_tool_prompt(
        "How much do 3 apples cost? The price is in the store under 'price:<item>'.",
        [t.spec for t in default_toolbox().tools.values() if t.name in ("kv_get", "calculate")],
        TOOL_USE_PROTOCOL,
    ),
    reference={
        "tools": ["kv_get", "calculate"],
        "store": {"price:apple": 1.25, "price:pear": 0.8},
        "answer": "3.75",
        "kind": "number",
        "tolerance": 0.005,
    },
    id="shop",
)


def test_scripted_episode_call_observation_answer_reward() -> None:
    env = ToolUseEnv([SHOP], render_mode="ansi")  # isolated calculator: runs in the worker process
    prompt, info = env.reset(seed=0)
    assert info["turn"] == 0 and prompt.endswith("under 'price:<item>'.")

    obs, reward, terminated, truncated, info = env.step("Let me look it up.\n" + tool_call("kv_get", key="price:apple"))
    assert obs == '<tool_response name="kv_get">\n1.25\n</tool_response>'
    assert (reward, terminated, truncated, info["reason"], info["turn"]) == (0.0, False, False, "tool_call", 1)
    assert info["tool_output"] == obs and info["tool_results"][0]["content"] == "1.25"
    assert info["tool_calls"] == [{"name": "kv_get", "arguments": {"key": "price:apple"}}]

    obs, reward, terminated, truncated, info = env.step(tool_call("calculate", expression="3 * 1.25"))
    assert "\n3.75\n" in obs and (reward, terminated) == (0.0, False)

    _, reward, terminated, truncated, info = env.step("Three apples cost $3.75.\nAnswer: 3.75 dollars")
    assert (reward, terminated, truncated, info["correct"], info["reason"]) == (1.0, True, False, True, "correct")
    assert [m["role"] for m in info["messages"]] == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    assert info["tool_output"] == "" and info["turn"] == 3
    assert "reward: 1 (correct" in env.render()
    with pytest.raises(ResetNeeded):
        env.step("Answer: 3.75")


def test_wrong_tool_result_path_scores_zero() -> None:
    env = ToolUseEnv([SHOP], isolate_tools=False)
    env.reset(seed=0)
    obs = env.step(tool_call("kv_get", key="price:pear"))[0]  # the wrong item's price
    assert "0.8" in obs
    obs = env.step(tool_call("calculate", expression="3 * 0.8"))[0]
    assert "2.4" in obs
    _, reward, terminated, _, info = env.step("Answer: 2.4")
    assert (reward, terminated, info["correct"], info["reason"]) == (0.0, True, False, "wrong")
    assert info["reference"] == "3.75"


def test_tool_errors_come_back_as_observations() -> None:
    env = ToolUseEnv([SHOP], isolate_tools=False, max_turns=10)
    env.reset(seed=0)
    for action, reason, text in [
        (tool_call("kv_get", key="price:kiwi"), "tool_error", "no key 'price:kiwi'"),
        (tool_call("convert_units", value=1, from_unit="km", to_unit="mi"), "unknown_function", "unknown function"),
        (tool_call("kv_get"), "invalid_arguments", "'key' is a required property"),
        ("<tool_call>{not json}</tool_call>", "parse_failed", "could not read your tool call"),
        (tool_call("calculate", expression="10**10**10"), "tool_error", "too large"),
        (
            "<tool_call>" + json.dumps([{"name": "kv_get", "arguments": {"key": "price:pear"}}] * 9) + "</tool_call>",
            "too_many_calls",
            "at most 8",
        ),
    ]:
        obs, reward, terminated, truncated, info = env.step(action)
        assert (reward, terminated, truncated, info["reason"]) == (0.0, False, False, reason), info
        assert "Error: " in obs and text in obs


def test_untagged_text_that_is_not_json_is_an_answer() -> None:
    env = ToolUseEnv([SHOP], isolate_tools=False)
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step("[checked the store] Answer: 3.75")
    assert (reward, terminated, info["reason"]) == (1.0, True, "correct")
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step('```json\n{"name": "kv_get", "arguments": \n```')  # a broken call
    assert (reward, terminated, info["reason"]) == (0.0, False, "parse_failed")


def test_max_turns_truncates() -> None:
    env = ToolUseEnv([SHOP], isolate_tools=False, max_turns=2)
    env.reset(seed=0)
    assert env.step(tool_call("kv_list"))[2:4] == (False, False)
    _, reward, terminated, truncated, info = env.step(tool_call("kv_list"))
    assert (reward, terminated, truncated, info["reason"]) == (0.0, False, True, "max_turns")
    with pytest.raises(ResetNeeded):
        env.step("Answer: 3.75")


def test_oversized_reply_ends_the_episode() -> None:
    env = ToolUseEnv([SHOP], isolate_tools=False)
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step("1" * 1_000_000)
    assert (reward, terminated, info["reason"]) == (0.0, True, "parse_failed")


def test_only_shown_tools_run_and_the_store_is_fresh_each_episode() -> None:
    env = ToolUseEnv([SHOP], isolate_tools=False)
    env.reset(seed=0)
    assert env.step(tool_call("kv_set", key="price:apple", value=99))[4]["reason"] == "unknown_function"  # not shown
    writable = Task(SHOP.prompt, {**SHOP.reference, "tools": ["kv_get", "kv_set"]}, id="writable")
    env = ToolUseEnv([writable], isolate_tools=False)
    env.reset(seed=0)
    assert env.step(tool_call("kv_set", key="price:apple", value=99))[4]["reason"] == "tool_call"
    assert "99" in env.step(tool_call("kv_get", key="price:apple"))[0]
    env.step("Answer: 297")
    env.reset(seed=0)
    assert "1.25" in env.step(tool_call("kv_get", key="price:apple"))[0]


@pytest.mark.parametrize("level", [1, 2, 3])
def test_reference_solutions_replay_to_the_answer(level: int) -> None:
    env = ToolUseEnv(level=level, num_tasks=24, isolate_tools=False)
    for k in range(24):
        env.reset(options={"task_id": k})
        task = env.unwrapped.tasks[k]
        for call in task.reference["solution"]:
            _, _, terminated, truncated, info = env.step(tool_call(call["name"], **call["arguments"]))
            assert info["reason"] == "tool_call" and not (terminated or truncated), (task.id, info["tool_output"])
        _, reward, terminated, _, info = env.step(f"Answer: {task.reference['answer']}")
        assert (reward, terminated) == (1.0, True), (task.id, info)
    assert ToolUseTasks(6, level=level)[0].meta["num_solution_calls"] >= level


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Answer: 42", "42"),
        ("I computed it.\nAnswer: 42\nThanks", "42"),
        ("<answer>Monday</answer>", "Monday"),
        ("The answer is **Monday**.", "Monday"),
        ('Final answer: "olleh"', "olleh"),
        ("42", "42"),
    ],
)
def test_extract_final_answer(text: str, expected: str) -> None:
    assert extract_final_answer(text) == expected


@pytest.mark.parametrize(
    "text, reference, reason",
    [
        ("Answer: 3.75", {"answer": "3.75", "kind": "number"}, "correct"),
        ("Answer: 3.750", {"answer": "3.75", "kind": "number"}, "correct"),
        ("Answer: 15/4", {"answer": "3.75", "kind": "number"}, "correct"),
        ("Answer: 1,234 km", {"answer": "1234", "kind": "number"}, "correct"),
        ("Answer: -63", {"answer": "-63", "kind": "number"}, "correct"),
        ("Answer: 116.2", {"answer": "116.2", "kind": "number", "tolerance": 0.01}, "correct"),
        ("Answer: 116.21", {"answer": "116.2", "kind": "number", "tolerance": 0.01}, "correct"),
        ("Answer: 116.22", {"answer": "116.2", "kind": "number", "tolerance": 0.01}, "wrong"),
        ("Answer: 3.7500001", {"answer": "3.75", "kind": "number"}, "wrong"),
        ("Answer: about 4", {"answer": "4", "kind": "number"}, "parse_failed"),
        ("Answer: 4 (2 + 2)", {"answer": "4", "kind": "number"}, "parse_failed"),
        ("Answer: " + "9" * 500, {"answer": "4", "kind": "number"}, "parse_failed"),
        ("Answer: monday", {"answer": "Monday", "kind": "string", "case_sensitive": False}, "correct"),
        ("Answer: OLLEH", {"answer": "olleh", "kind": "string"}, "wrong"),
        ("Answer: olleh.", {"answer": "olleh", "kind": "string"}, "correct"),
    ],
)
def test_final_answer_verification(text: str, reference: dict[str, Any], reason: str) -> None:
    assert verify_final_answer(text, reference).reason == reason


@pytest.mark.parametrize(
    "module", [tool_call_env, tool_use_env, tool_call_verifier, tools_base], ids=lambda m: m.__name__
)
def test_docstring_examples_run(module: Any) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
