"""The tool-call verifier: parsing, JSON-schema validation and BFCL matching, table-driven."""

from __future__ import annotations

import json
from typing import Any

import pytest

from grpo_envs.verify.tool_call import (
    MAX_JSON_DEPTH,
    ToolCallParseError,
    json_depth_exceeds,
    parse_tool_calls,
    to_json_schema,
    verify_tool_calls,
)

WEATHER = {
    "name": "get_weather",
    "description": "Current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city"],
    },
}
AREA = {
    "name": "calculate_triangle_area",
    "description": "Area of a triangle (BFCL-style types).",
    "parameters": {
        "type": "dict",
        "properties": {"base": {"type": "integer"}, "height": {"type": "float"}, "unit": {"type": "string"}},
        "required": ["base", "height"],
    },
}
FACTORIAL = {
    "name": "math.factorial",
    "description": "n!",
    "parameters": {"type": "dict", "properties": {"number": {"type": "integer"}}, "required": ["number"]},
}
ALARM = {
    "name": "set_alarm",
    "description": "Set an alarm.",
    "parameters": {
        "type": "object",
        "properties": {
            "time": {"type": "string"},
            "days": {"type": "array", "items": {"type": "string"}},
            "snooze": {"type": "boolean"},
        },
        "required": ["time"],
    },
}
FLIGHT = {
    "type": "function",
    "function": {
        "name": "book_flight",
        "description": "Book a flight (OpenAI-wrapped).",
        "parameters": {
            "type": "object",
            "properties": {
                "destination": {"type": "string"},
                "passengers": {"type": "integer"},
                "preferences": {
                    "type": "object",
                    "properties": {"seat": {"type": "string"}, "meal": {"type": "string"}},
                },
            },
            "required": ["destination"],
        },
    },
}
CALC = {
    "name": "calculate",
    "description": "Evaluate.",
    "parameters": {"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]},
}
TOOLS = [WEATHER, AREA, FACTORIAL, ALARM, FLIGHT, CALC]

PARIS = [{"get_weather": {"city": ["Paris"], "unit": ["", "celsius"]}}]
PARIS_F = [{"get_weather": {"city": ["Paris"], "unit": ["fahrenheit"]}}]
TRIANGLE = [{"calculate_triangle_area": {"base": [10], "height": [5.0], "unit": ["units", ""]}}]
TWO_CITIES = [{"get_weather": {"city": ["Paris"], "unit": [""]}}, {"get_weather": {"city": ["Tokyo"], "unit": [""]}}]
OVERLAP = [
    {"get_weather": {"city": ["Paris", "London"], "unit": [""]}},
    {"get_weather": {"city": ["Paris"], "unit": [""]}},
]
MIXED = [{"get_weather": {"city": ["Oslo"], "unit": [""]}}, {"math.factorial": {"number": [5]}}]
ALARM_REF = [{"set_alarm": {"time": ["07:30"], "days": [["Monday", "Friday"]], "snooze": ["", False]}}]
FLIGHT_REF = [
    {
        "book_flight": {
            "destination": ["Lisbon"],
            "passengers": ["", 1],
            "preferences": ["", {"seat": ["window"], "meal": ["", "vegetarian"]}],
        }
    }
]
EXPR = [{"calculate": {"expression": ["3 * (4 + 5)"]}}]
NONE: list[Any] = []


def call(name: str, **arguments: Any) -> str:
    return json.dumps({"name": name, "arguments": arguments})


def tagged(*calls: str) -> str:
    return "".join(f"<tool_call>{c}</tool_call>" for c in calls)


# (case id, completion, reference, expected reason, expected reward, keyword options, expected mismatch subset)
CASES: list[tuple[str, str, list[Any], str, float, dict[str, Any], dict[str, Any]]] = [
    # -- formats
    ("bare-object", call("get_weather", city="Paris"), PARIS, "correct", 1.0, {}, {}),
    ("tags", tagged(call("get_weather", city="Paris")), PARIS, "correct", 1.0, {}, {}),
    ("json-fence", "Sure:\n```json\n" + call("get_weather", city="Paris") + "\n```", PARIS, "correct", 1.0, {}, {}),
    ("plain-fence", "```\n" + call("get_weather", city="Paris") + "\n```", PARIS, "correct", 1.0, {}, {}),
    ("list-of-one", "[" + call("get_weather", city="Paris") + "]", PARIS, "correct", 1.0, {}, {}),
    (
        "openai-wrapper-string-args",
        json.dumps(
            {"type": "function", "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})}}
        ),
        PARIS,
        "correct",
        1.0,
        {},
        {},
    ),
    (
        "parameters-alias",
        json.dumps({"name": "get_weather", "parameters": {"city": "Paris"}}),
        PARIS,
        "correct",
        1.0,
        {},
        {},
    ),
    (
        "embedded-in-prose",
        "I will check. " + call("get_weather", city="Paris") + " Done.",
        PARIS,
        "correct",
        1.0,
        {},
        {},
    ),
    ("unclosed-tag-complete-json", "<tool_call>" + call("get_weather", city="Paris"), PARIS, "correct", 1.0, {}, {}),
    # -- numbers by value, booleans are not numbers
    (
        "int-as-float-for-integer",
        call("calculate_triangle_area", base=10.0, height=5.0),
        TRIANGLE,
        "correct",
        1.0,
        {},
        {},
    ),
    ("int-for-float-param", call("calculate_triangle_area", base=10, height=5), TRIANGLE, "correct", 1.0, {}, {}),
    (
        "wrong-number",
        call("calculate_triangle_area", base=10, height=6),
        TRIANGLE,
        "wrong_value",
        0.0,
        {},
        {"argument": "height", "call_index": 0},
    ),
    (
        "bool-for-integer",
        call("calculate_triangle_area", base=True, height=5),
        TRIANGLE,
        "invalid_arguments",
        0.0,
        {},
        {"argument": "base"},
    ),
    (
        "non-integral-float-for-integer",
        call("calculate_triangle_area", base=10.5, height=5),
        TRIANGLE,
        "invalid_arguments",
        0.0,
        {},
        {"argument": "base"},
    ),
    (
        "number-as-string",
        call("calculate_triangle_area", base="10", height=5),
        TRIANGLE,
        "invalid_arguments",
        0.0,
        {},
        {"argument": "base"},
    ),
    (
        "bool-false-matches",
        call("set_alarm", time="07:30", days=["Monday", "Friday"], snooze=False),
        ALARM_REF,
        "correct",
        1.0,
        {},
        {},
    ),
    (
        "int-zero-for-boolean",
        call("set_alarm", time="07:30", days=["Monday", "Friday"], snooze=0),
        ALARM_REF,
        "invalid_arguments",
        0.0,
        {},
        {"argument": "snooze"},
    ),
    # -- strings after BFCL normalisation
    ("string-case", call("get_weather", city="PARIS"), PARIS, "correct", 1.0, {}, {}),
    ("string-punctuation-space", call("get_weather", city=" Pa-r_is. "), PARIS, "correct", 1.0, {}, {}),
    ("string-other-city", call("get_weather", city="Rome"), PARIS, "wrong_value", 0.0, {}, {"argument": "city"}),
    (
        "bfcl-normalisation-drops-operators",
        call("calculate", expression="3 / (4 + 5)"),
        EXPR,
        "correct",
        1.0,
        {"string_match": {}},
        {},
    ),
    (
        "ignore-space-keeps-operators",
        call("calculate", expression="3 / (4 + 5)"),
        EXPR,
        "wrong_value",
        0.0,
        {"string_match": {"expression": "ignore_space"}},
        {"argument": "expression"},
    ),
    (
        "ignore-space-spacing",
        call("calculate", expression="3*(4+5)"),
        EXPR,
        "correct",
        1.0,
        {"string_match": {"expression": "ignore_space"}},
        {},
    ),
    (
        "exact-mode-case",
        call("get_weather", city="paris"),
        PARIS,
        "wrong_value",
        0.0,
        {"string_match": {"city": "exact"}},
        {"argument": "city"},
    ),
    # -- optional parameters ("" = may be omitted)
    ("optional-omitted", call("get_weather", city="Paris"), PARIS, "correct", 1.0, {}, {}),
    ("optional-given-default", call("get_weather", city="Paris", unit="celsius"), PARIS, "correct", 1.0, {}, {}),
    (
        "optional-given-other",
        call("get_weather", city="Paris", unit="fahrenheit"),
        PARIS,
        "wrong_value",
        0.0,
        {},
        {"argument": "unit"},
    ),
    (
        "needed-optional-omitted",
        call("get_weather", city="Paris"),
        PARIS_F,
        "missing_argument",
        0.0,
        {},
        {"argument": "unit"},
    ),
    (
        "schema-param-not-in-reference",
        call("calculate_triangle_area", base=10, height=5, unit="cm"),
        [{"calculate_triangle_area": {"base": [10], "height": [5.0]}}],
        "unexpected_argument",
        0.0,
        {},
        {"argument": "unit"},
    ),
    # -- schema validation
    (
        "missing-required",
        call("get_weather", unit="celsius"),
        PARIS,
        "invalid_arguments",
        0.0,
        {},
        {"argument": "city"},
    ),
    (
        "argument-not-in-schema",
        call("get_weather", city="Paris", country="FR"),
        PARIS,
        "invalid_arguments",
        0.0,
        {},
        {"argument": "country"},
    ),
    (
        "enum-violation",
        call("get_weather", city="Paris", unit="kelvin"),
        PARIS,
        "invalid_arguments",
        0.0,
        {},
        {"argument": "unit"},
    ),
    (
        "array-item-type",
        call("set_alarm", time="07:30", days=["Monday", 5]),
        ALARM_REF,
        "invalid_arguments",
        0.0,
        {},
        {"argument": "days"},
    ),
    (
        "unknown-function",
        call("get_forecast", city="Paris"),
        PARIS,
        "unknown_function",
        0.0,
        {},
        {"function": "get_forecast", "call_index": 0},
    ),
    # -- choosing among several functions
    ("wrong-function", call("math.factorial", number=5), PARIS, "wrong_function", 0.0, {}, {"expected": "get_weather"}),
    (
        "dotted-name-with-underscore",
        call("math_factorial", number=5),
        [{"math.factorial": {"number": [5]}}],
        "correct",
        1.0,
        {},
        {},
    ),
    # -- lists and dicts
    ("list-in-order", call("set_alarm", time="07:30", days=["monday", "FRIDAY"]), ALARM_REF, "correct", 1.0, {}, {}),
    (
        "list-order-matters",
        call("set_alarm", time="07:30", days=["Friday", "Monday"]),
        ALARM_REF,
        "wrong_value",
        0.0,
        {},
        {"argument": "days"},
    ),
    (
        "nested-dict-partial-keys",
        call("book_flight", destination="Lisbon", preferences={"seat": "Window"}),
        FLIGHT_REF,
        "correct",
        1.0,
        {},
        {},
    ),
    (
        "nested-dict-wrong-value",
        call("book_flight", destination="Lisbon", preferences={"seat": "aisle"}),
        FLIGHT_REF,
        "wrong_value",
        0.0,
        {},
        {"argument": "preferences"},
    ),
    (
        "nested-dict-unexpected-key",
        call("book_flight", destination="Lisbon", preferences={"seat": "window", "pet": "cat"}),
        FLIGHT_REF,
        "wrong_value",
        0.0,
        {},
        {"argument": "preferences"},
    ),  # nested objects may have extra keys in JSON Schema
    # -- parallel calls: any order, right count
    (
        "parallel-in-order",
        tagged(call("get_weather", city="Paris"), call("get_weather", city="Tokyo")),
        TWO_CITIES,
        "correct",
        1.0,
        {},
        {},
    ),
    (
        "parallel-reversed",
        json.dumps(
            [
                {"name": "get_weather", "arguments": {"city": "Tokyo"}},
                {"name": "get_weather", "arguments": {"city": "Paris"}},
            ]
        ),
        TWO_CITIES,
        "correct",
        1.0,
        {},
        {},
    ),
    (
        "parallel-overlapping-answers",
        tagged(call("get_weather", city="Paris"), call("get_weather", city="London")),
        OVERLAP,
        "correct",
        1.0,
        {},
        {},
    ),
    (
        "parallel-mixed-functions",
        tagged(call("math.factorial", number=5), call("get_weather", city="oslo")),
        MIXED,
        "correct",
        1.0,
        {},
        {},
    ),
    (
        "parallel-missing-one",
        tagged(call("get_weather", city="Paris")),
        TWO_CITIES,
        "wrong_count",
        0.0,
        {},
        {"reference_index": 1},
    ),
    (
        "parallel-extra-call",
        tagged(call("get_weather", city="Paris"), call("get_weather", city="Tokyo"), call("get_weather", city="Rome")),
        TWO_CITIES,
        "wrong_count",
        0.0,
        {},
        {"call_index": 2},
    ),
    (
        "parallel-one-wrong",
        tagged(call("get_weather", city="Paris"), call("get_weather", city="Kyoto")),
        TWO_CITIES,
        "wrong_value",
        0.0,
        {},
        {"call_index": 1, "argument": "city", "got": "Kyoto"},
    ),
    (
        "parallel-one-wrong-fraction",
        tagged(call("get_weather", city="Paris"), call("get_weather", city="Kyoto")),
        TWO_CITIES,
        "wrong_value",
        0.75,
        {"reward_mode": "fraction"},
        {"call_index": 1},
    ),
    (
        "parallel-missing-fraction",
        tagged(call("get_weather", city="Tokyo")),
        TWO_CITIES,
        "wrong_count",
        0.5,
        {"reward_mode": "fraction"},
        {},
    ),
    (
        "wrong-function-fraction",
        call("math.factorial", number=5),
        PARIS,
        "wrong_function",
        0.0,
        {"reward_mode": "fraction"},
        {},
    ),
    (
        "single-arg-wrong-fraction",
        call("calculate_triangle_area", base=10, height=6),
        TRIANGLE,
        "wrong_value",
        2 / 3,
        {"reward_mode": "fraction"},
        {"argument": "height"},
    ),
    (
        "invalid-scores-zero-in-fraction",
        call("get_weather", unit="celsius"),
        PARIS,
        "invalid_arguments",
        0.0,
        {"reward_mode": "fraction"},
        {},
    ),
    # -- irrelevance and missing calls
    ("irrelevance-empty-list", "[]", NONE, "correct", 1.0, {}, {}),
    ("irrelevance-empty-list-tagged", "<tool_call>[]</tool_call>", NONE, "correct", 1.0, {}, {}),
    ("irrelevance-plain-text-default", "I cannot help with that.", NONE, "no_call", 0.0, {}, {}),
    (
        "irrelevance-plain-text-bfcl-rule",
        "I cannot help with that.",
        NONE,
        "correct",
        1.0,
        {"abstain": "plain_text"},
        {},
    ),
    (
        "irrelevance-but-called",
        call("get_weather", city="Paris"),
        NONE,
        "unexpected_call",
        0.0,
        {},
        {"call_index": 0, "function": "get_weather"},
    ),
    ("plain-text-when-call-needed", "The weather in Paris is nice.", PARIS, "no_call", 0.0, {}, {}),
    ("empty-list-when-call-needed", "[]", PARIS, "no_call", 0.0, {}, {}),
    ("empty-completion", "", PARIS, "no_call", 0.0, {}, {}),
    # -- bad input: reward 0 with a reason, never an exception
    ("malformed-json", '{"name": "get_weather", "arguments": {"city": "Paris"', PARIS, "parse_failed", 0.0, {}, {}),
    ("malformed-in-tags", "<tool_call>{name: get_weather}</tool_call>", PARIS, "parse_failed", 0.0, {}, {}),
    ("one-tag-broken", tagged(call("get_weather", city="Paris"), "{oops"), PARIS, "parse_failed", 0.0, {}, {}),
    (
        "arguments-not-object",
        json.dumps({"name": "get_weather", "arguments": ["Paris"]}),
        PARIS,
        "parse_failed",
        0.0,
        {},
        {},
    ),
    ("name-missing", json.dumps({"arguments": {"city": "Paris"}}), PARIS, "parse_failed", 0.0, {}, {}),
    ("call-is-a-number", "[42]", PARIS, "parse_failed", 0.0, {}, {}),
    ("one-megabyte", call("get_weather", city="x" * 1_000_000), PARIS, "parse_failed", 0.0, {}, {}),
    (
        "deep-nesting",
        '{"name": "get_weather", "arguments": {"city": ' + "[" * 5000 + "]" * 5000 + "}}",
        PARIS,
        "parse_failed",
        0.0,
        {},
        {},
    ),
    (
        "deep-nesting-in-string-args",
        json.dumps({"name": "get_weather", "arguments": "[" * 100 + "]" * 100}),
        PARIS,
        "parse_failed",
        0.0,
        {},
        {},
    ),
    (
        "huge-integer",
        '{"name": "math.factorial", "arguments": {"number": ' + "9" * 5000 + "}}",
        [{"math.factorial": {"number": [5]}}],
        "parse_failed",
        0.0,
        {},
        {},
    ),
]


@pytest.mark.parametrize(
    "completion, reference, reason, reward, options, mismatch",
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_matching_table(
    completion: str, reference: list[Any], reason: str, reward: float, options: dict[str, Any], mismatch: dict[str, Any]
) -> None:
    result = verify_tool_calls(completion, reference, TOOLS, **options)
    assert result.reason == reason, result.details
    assert result.reward == pytest.approx(reward)
    assert result.correct is (reason == "correct")
    if reason != "correct":
        assert result.details.get("message"), "every failure explains itself"
    for key, value in mismatch.items():
        assert result.details["mismatch"][key] == value, result.details


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert len({case[0] for case in CASES}) == len(CASES)


def test_parse_reads_every_call_in_order() -> None:
    parsed = parse_tool_calls(tagged(call("a", x=1), json.dumps([{"name": "b"}, {"name": "c", "arguments": {}}])))
    assert [c.name for c in parsed.calls] == ["a", "b", "c"]
    assert parsed.calls[0].arguments == {"x": 1} and parsed.calls[1].arguments == {}
    assert parse_tool_calls("no tools needed").explicit is False
    assert parse_tool_calls("[]").explicit is True


def test_parse_limits_are_checked_before_decoding() -> None:
    with pytest.raises(ToolCallParseError, match="limit"):
        parse_tool_calls("x" * 101, max_chars=100)
    assert json_depth_exceeds("[" * (MAX_JSON_DEPTH + 1))
    assert not json_depth_exceeds('["[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["]')  # brackets inside a string
    with pytest.raises(ToolCallParseError, match="more than 2 calls"):
        parse_tool_calls("[" + ",".join([call("a")] * 3) + "]", max_calls=2)


def test_bfcl_types_become_json_schema() -> None:
    schema = to_json_schema(
        {
            "type": "dict",
            "properties": {
                "x": {"type": "float"},
                "t": {"type": "tuple", "items": {"type": "integer"}},
                "v": {"type": "any"},
            },
        }
    )
    assert schema["type"] == "object"
    assert schema["properties"]["x"]["type"] == "number"
    assert schema["properties"]["t"] == {"type": "array", "items": {"type": "integer"}}
    assert "type" not in schema["properties"]["v"]


def test_bad_modes_are_user_errors() -> None:
    with pytest.raises(ValueError, match="reward_mode"):
        verify_tool_calls("[]", [], TOOLS, reward_mode="partial")
    with pytest.raises(ValueError, match="abstain"):
        verify_tool_calls("[]", [], TOOLS, abstain="silence")


def test_broken_spec_is_reported_not_raised() -> None:
    broken = {"name": "f", "parameters": {"type": "object", "properties": {"a": {"minLength": "five"}}}}
    result = verify_tool_calls(call("f", a=1), [{"f": {"a": [1]}}], [broken])
    assert result.reason == "error" and result.reward == 0.0


def test_the_format_read_is_reported() -> None:
    tagged_call = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'
    mistral_call = '[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}'
    reference = [{"get_weather": {"city": ["Paris"], "unit": [""]}}]
    assert verify_tool_calls(tagged_call, reference, [WEATHER]).details["call_format"] == "hermes"
    assert verify_tool_calls(mistral_call, reference, [WEATHER]).details["call_format"] == "mistral_args"
    assert verify_tool_calls("It is sunny.", reference, [WEATHER]).details["call_format"] is None
    broken = verify_tool_calls("[TOOL_CALLS]get_weather[ARGS]{", reference, [WEATHER])
    assert (broken.reason, broken.details["call_format"]) == ("parse_failed", None)
