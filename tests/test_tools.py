"""The project's real tools and the Toolbox that runs a policy's calls against them."""

from __future__ import annotations

import math
import os
import time
from typing import Any

import pytest

from grpo_envs.tools import DEFAULT_TOOLS, KeyValueStore, Tool, Toolbox, ToolError, default_toolbox, format_value
from grpo_envs.tools.calculator import MAX_EXPRESSION_CHARS, calculate
from grpo_envs.tools.dates import date_add, date_diff, day_of_week
from grpo_envs.tools.strings import change_case, count_occurrences, reverse_text, text_length
from grpo_envs.tools.units import convert_units
from grpo_envs.verify.tool_call import FunctionCall
from grpo_envs.verify.worker import TimeoutWorker


@pytest.mark.parametrize(
    "expression, expected",
    [
        ("3 * (4 + 5) / 2", 13.5),
        ("6 / 3", 2),
        ("7 // 2", 3),
        ("-7 % 3", 2),
        ("2 ** 10", 1024),
        ("2 ^ 10", 1024),
        ("2 ** -2", 0.25),
        ("sqrt(16) + abs(-3)", 7.0),
        ("round(pi, 2)", 3.14),
        ("max(3, 9, 4) - min(3, 9, 4)", 6),
        ("factorial(20)", math.factorial(20)),
        ("log(8, 2)", 3.0),
        ("0.1 + 0.2", 0.1 + 0.2),
        ("99 ** 300", 99**300),  # large but within the integer bound
    ],
)
def test_calculator_values(expression: str, expected: float) -> None:
    assert calculate(expression) == pytest.approx(expected)


@pytest.mark.parametrize(
    "expression, message",
    [
        ("10**10**10", "too large"),
        ("9**9**9", "too large"),
        ("2**100000", "too large"),
        ("(2**4000) * (2**4000)", "bits"),
        ("1e308 * 10", "finite"),
        ("1 / 0", "division by zero"),
        ("5 % 0", "modulo by zero"),
        ("sqrt(-1)", "undefined"),
        ("factorial(100000)", "factorial"),
        ("round(2.5, 10**9)", "digits"),
        ("__import__('os').system('echo hi')", "unknown function"),
        ("open('/etc/passwd').read()", "unknown"),
        ("().__class__.__bases__", "not allowed"),
        ("x + 1", "unknown name"),
        ("[1, 2, 3]", "not allowed"),
        ("(lambda: 1)()", "unknown function"),
        ("'a' * 10", "only numbers"),
        ("True + 1", "only numbers"),
        ("sqrt(x=4)", "keyword"),
        ("1 +", "cannot parse"),
        ("(" * 210 + "1" + ")" * 210, "cannot parse"),
        ("1" + "+1" * 200, "parts"),
        ("1" * (MAX_EXPRESSION_CHARS + 1), "characters"),
    ],
)
def test_calculator_refuses(expression: str, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        calculate(expression)


@pytest.mark.parametrize(
    "value, source, target, expected",
    [
        (1, "mi", "km", 1.609344),
        (5, "kilometers", "miles", 5 / 1.609344),
        (12, "inches", "ft", 1.0),
        (1, "lb", "g", 453.59237),
        (100, "C", "F", 212.0),
        (32, "fahrenheit", "celsius", 0.0),
        (0, "K", "C", -273.15),
        (3, "hours", "minutes", 180.0),
        (1, "gallon", "liters", 3.785411784),
        (1, "acre", "m2", 4046.8564224),
    ],
)
def test_unit_conversions(value: float, source: str, target: str, expected: float) -> None:
    assert convert_units(value, source, target) == pytest.approx(expected, rel=1e-12, abs=1e-9)


@pytest.mark.parametrize(
    "source, target, message",
    [
        ("km", "kg", "cannot convert"),
        ("C", "m", "only temperatures"),
        ("furlong", "m", "unknown unit"),
    ],
)
def test_unit_errors(source: str, target: str, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        convert_units(1, source, target)


def test_dates() -> None:
    assert date_add("2024-02-28", 1) == "2024-02-29"  # leap year
    assert date_add("2023-02-28", 1) == "2023-03-01"
    assert date_add("2024-03-01", -1) == "2024-02-29"
    assert date_diff("2024-01-01", "2025-01-01") == 366
    assert date_diff("2025-01-01", "2024-01-01") == -366
    assert day_of_week("2000-01-01") == "Saturday"
    for bad in ("01/02/2024", "2024-13-01", "tomorrow", ""):
        with pytest.raises(ToolError, match="YYYY-MM-DD"):
            day_of_week(bad)
    with pytest.raises(ToolError, match="between"):
        date_add("2024-01-01", 10**9)
    with pytest.raises(ToolError, match="years"):
        date_add("9999-12-01", 100)


def test_strings() -> None:
    assert text_length("héllo wörld") == 11
    assert reverse_text("stressed") == "desserts"
    assert change_case("river stone", "title") == "River Stone"
    assert count_occurrences("Banana bandana", "an") == 4
    assert count_occurrences("Banana", "BA", False) == 1
    with pytest.raises(ToolError, match="empty"):
        count_occurrences("abc", "")


def test_key_value_store_is_bounded_and_in_memory(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = KeyValueStore({"a": 1}, max_keys=2)
    store.set("../escape.txt", "data")
    assert store.get("../escape.txt") == "data"
    assert os.listdir(tmp_path) == []  # a path-like key is only a key
    with pytest.raises(ToolError, match="full"):
        store.set("c", 3)
    with pytest.raises(ToolError, match="no key"):
        store.get("missing")
    with pytest.raises(ToolError, match="characters"):
        store.set("b", "x" * 10_000)
    store.delete("a")
    assert store.keys() == ["../escape.txt"]


def test_every_tool_has_a_valid_spec() -> None:
    from jsonschema import Draft202012Validator

    names = [tool.name for tool in DEFAULT_TOOLS]
    assert len(names) == len(set(names))
    for tool in DEFAULT_TOOLS:
        spec = tool.spec
        assert spec["description"] and spec["parameters"]["type"] == "object"
        Draft202012Validator.check_schema(spec["parameters"])


@pytest.fixture(scope="module")
def box() -> Toolbox:
    return default_toolbox(isolate=False)


@pytest.mark.parametrize(
    "name, arguments, reason, text",
    [
        ("calculate", {"expression": "2 + 2"}, None, "4"),
        ("convert_units", {"value": 100, "from_unit": "C", "to_unit": "F"}, None, "212"),
        ("kv_get", {"key": "greeting"}, None, "hello"),
        ("kv_list", {}, None, '["greeting"]'),
        ("nope", {}, "unknown_function", "unknown function"),
        ("calculate", {}, "invalid_arguments", "'expression' is a required property"),
        ("calculate", {"expression": 42}, "invalid_arguments", "not of type 'string'"),
        ("calculate", {"expression": "1", "extra": 1}, "invalid_arguments", "Additional properties"),
        ("calculate", {"expression": "10**10**10"}, "tool_error", "too large"),
        ("date_add", {"date": "2024-01-01", "days": 1.5}, "invalid_arguments", "not of type 'integer'"),
        ("kv_get", {"key": "missing"}, "tool_error", "kv_list"),
        ("reverse_text", {"text": "x" * 20_000}, "invalid_arguments", "maxLength = 10000"),
    ],
)
def test_toolbox_turns_every_outcome_into_text(
    box: Toolbox, name: str, arguments: dict[str, Any], reason: str | None, text: str
) -> None:
    output = box.execute(FunctionCall(name, arguments), KeyValueStore({"greeting": "hello"}))
    assert output.reason == reason
    assert output.ok is (reason is None)
    assert text in output.content
    if reason is not None:
        assert output.content.startswith("Error: ")


def test_toolbox_catches_tool_bugs_and_cuts_long_output() -> None:
    def buggy(x: str) -> str:
        raise KeyError(x)

    def verbose(x: str) -> str:
        return x * 1000

    spec = {"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]}
    box = Toolbox([Tool("buggy", "raises", spec, buggy), Tool("verbose", "long", spec, verbose)], max_output_chars=50)
    assert box.execute(FunctionCall("buggy", {"x": "k"})).reason == "error"
    long = box.execute(FunctionCall("verbose", {"x": "ab"}))
    assert long.ok and long.content.endswith("[truncated]") and len(long.content) < 80


def test_format_value() -> None:
    assert format_value(0.1 + 0.2) == "0.3"
    assert format_value(2.0) == "2"
    assert format_value(1e20) == "1e+20"
    assert format_value(True) == "true"
    assert format_value(["a", 1]) == '["a", 1]'


def sleep_then_return(seconds: float) -> float:
    """An isolated tool that overruns (module level, so the worker can import it)."""
    time.sleep(seconds)
    return seconds


def test_isolated_tools_run_in_the_worker_and_time_out() -> None:
    worker = TimeoutWorker(memory_limit=None)
    sleeper = Tool(
        "sleep",
        "sleeps",
        {"type": "object", "properties": {"seconds": {"type": "number"}}, "required": ["seconds"]},
        sleep_then_return,
        isolated=True,
    )
    calculator = next(t for t in DEFAULT_TOOLS if t.name == "calculate")
    box = Toolbox([sleeper, calculator], timeout=1.0, worker=worker)
    try:
        first_pid = None
        assert box.execute(FunctionCall("calculate", {"expression": "6 * 7"})).content == "42"
        first_pid = worker.pid
        assert first_pid is not None and first_pid != os.getpid()
        refused = box.execute(FunctionCall("calculate", {"expression": "10**10**10"}))
        assert refused.reason == "tool_error" and "too large" in refused.content
        hung = box.execute(FunctionCall("sleep", {"seconds": 30}))
        assert hung.reason == "timeout" and "stopped" in hung.content
        assert worker.pid != first_pid  # the overrunning child was killed and replaced
        assert box.execute(FunctionCall("calculate", {"expression": "1 + 1"})).content == "2"
    finally:
        worker.close()


def test_isolated_tool_cannot_use_the_store() -> None:
    with pytest.raises(ValueError, match="cannot use the store"):
        Tool("t", "", {"type": "object"}, sleep_then_return, uses_store=True, isolated=True)
