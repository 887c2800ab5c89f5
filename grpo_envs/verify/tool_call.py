"""Verify JSON function calls against tool specs and reference calls (the BFCL convention).

Three pure steps, each usable on its own and each in its own module (re-exported here):

1. :func:`parse_tool_calls` (:mod:`~grpo_envs.verify.tool_call_parse`) reads the calls out
   of a completion: a JSON object ``{"name": ..., "arguments": {...}}`` or a list of them,
   bare, inside ``<tool_call>...</tool_call>`` tags (one tag per call, or a list in one tag)
   or inside a fenced code block. Size and nesting depth are checked *before* ``json.loads``
   sees the text.
2. :func:`validate_call` (:mod:`~grpo_envs.verify.tool_schema`) checks a call against its
   JSON-schema spec with ``jsonschema`` (BFCL's ``dict``/``float``/``tuple``/``any`` type
   names are translated first).
3. :func:`match_calls` (:mod:`~grpo_envs.verify.tool_match`) compares the calls with the
   reference, which uses the format of BFCL's ``possible_answer`` files:
   ``[{"func_name": {"param": [acceptable values]}}]``. ``""`` in a parameter's list means
   the parameter may be omitted; parallel calls match in any order; numbers compare by value
   (``5 == 5.0``, but ``True != 1``); strings compare after BFCL's normalisation (lower case,
   without spaces and ``,./-_*^``).

:func:`verify_tool_calls` chains the three and returns a
:class:`~grpo_envs.verify.result.VerifyResult` whose ``details`` name the first call or
argument that was wrong, and whose ``details["call_format"]`` says which syntax the calls
were read from (see :data:`~grpo_envs.verify.tool_call_parse.CALL_FORMATS`; None for plain
text). Nothing here executes a call.

Example::

    >>> from grpo_envs.verify.tool_call import verify_tool_calls
    >>> tools = [{"name": "get_weather", "description": "Current weather.", "parameters": {
    ...     "type": "object", "properties": {"city": {"type": "string"},
    ...     "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}]
    >>> reference = [{"get_weather": {"city": ["Paris"], "unit": ["", "celsius"]}}]
    >>> verify_tool_calls('<tool_call>{"name": "get_weather", "arguments": {"city": "paris"}}</tool_call>',
    ...                   reference, tools).reward
    1.0
    >>> verify_tool_calls('{"name": "get_weather", "arguments": {"city": "Rome"}}', reference, tools).reason
    'wrong_value'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from jsonschema.exceptions import SchemaError

from grpo_envs.verify.result import ERROR, PARSE_FAILED, VerifyResult
from grpo_envs.verify.tool_call_parse import (
    CALL_FORMATS,
    MAX_CALLS,
    MAX_CHARS,
    MAX_JSON_DEPTH,
    FunctionCall,
    ParsedCompletion,
    ToolCallParseError,
    json_depth_exceeds,
    parse_tool_calls,
)
from grpo_envs.verify.tool_match import (
    MISSING_ARGUMENT,
    STRING_MATCH_MODES,
    UNEXPECTED_ARGUMENT,
    UNEXPECTED_CALL,
    WRONG_COUNT,
    WRONG_FUNCTION,
    WRONG_VALUE,
    match_calls,
    normalise_string,
    values_equal,
)
from grpo_envs.verify.tool_schema import (
    INVALID_ARGUMENTS,
    UNKNOWN_FUNCTION,
    arguments_schema,
    function_name,
    resolve_function,
    to_json_schema,
    unwrap_spec,
    validate_arguments,
    validate_call,
)

NO_CALL = "no_call"  #: the reference has calls, the completion made none
REWARD_MODES = ("binary", "fraction")
#: How an irrelevance task (reference ``[]``) must be answered: ``"empty_list"`` needs an
#: explicit empty call list ``[]`` (the xLAM convention; random text then scores 0), while
#: ``"plain_text"`` is BFCL's rule: any completion without a function call is right.
ABSTAIN_MODES = ("empty_list", "plain_text")


def verify_tool_calls(
    completion: str,
    reference: Sequence[Mapping[str, Mapping[str, list[Any]]]],
    tools: Sequence[Mapping[str, Any]],
    *,
    reward_mode: str = "binary",
    abstain: str = "empty_list",
    string_match: Mapping[str, str] | None = None,
    max_chars: int = MAX_CHARS,
    max_depth: int = MAX_JSON_DEPTH,
) -> VerifyResult:
    """Score a completion's function calls against the reference calls. Never raises for any
    completion (a broken *spec* is reported as reason ``error``).

    :param completion: the policy's text.
    :param reference: BFCL possible answers, ``[]`` when no tool applies (irrelevance).
    :param tools: the function specs shown to the policy (flat or OpenAI-wrapped).
    :param reward_mode: ``"binary"`` or ``"fraction"`` (partial credit per argument).
    :param abstain: how an irrelevance task is answered (see :data:`ABSTAIN_MODES`).
    :param string_match: per-parameter string comparison, e.g. ``{"expression": "ignore_space"}``.
    :param max_chars: longest completion read.
    :param max_depth: deepest JSON nesting read.
    """
    if reward_mode not in REWARD_MODES:
        raise ValueError(f"reward_mode={reward_mode!r} is not supported; use one of {REWARD_MODES}")
    if abstain not in ABSTAIN_MODES:
        raise ValueError(f"abstain={abstain!r} is not supported; use one of {ABSTAIN_MODES}")
    try:
        parsed = parse_tool_calls(completion, max_chars=max_chars, max_depth=max_depth)
    except ToolCallParseError as exc:
        return VerifyResult.fail(PARSE_FAILED, message=str(exc), call_format=None)
    result = _verify_parsed(parsed, reference, tools, reward_mode, abstain, string_match)
    return replace(result, details={**result.details, "call_format": parsed.format})


def _verify_parsed(
    parsed: ParsedCompletion,
    reference: Sequence[Mapping[str, Mapping[str, list[Any]]]],
    tools: Sequence[Mapping[str, Any]],
    reward_mode: str,
    abstain: str,
    string_match: Mapping[str, str] | None,
) -> VerifyResult:
    calls = parsed.calls
    counts = {"num_calls": len(calls), "expected_calls": len(reference)}
    if not calls:
        if reference:
            return VerifyResult.fail(
                NO_CALL, parsed=[], message=f"no function call found; expected {len(reference)}", **counts
            )
        if parsed.explicit or abstain == "plain_text":
            return VerifyResult.success(parsed=[], **counts)
        return VerifyResult.fail(
            NO_CALL, parsed=[], message="no tool applies: answer with an explicit empty call list []", **counts
        )
    specs_by_name = {function_name(spec): unwrap_spec(spec) for spec in tools}
    for index, call in enumerate(calls):
        try:
            failure = validate_call(call, specs_by_name)
        except SchemaError as exc:
            return VerifyResult.fail(
                ERROR, message=f"the spec of {call.name!r} is not a valid JSON schema: {exc.message}"
            )
        if failure is not None:
            return VerifyResult.fail(
                failure.reason,
                parsed=[c.to_dict() for c in calls],
                mismatch={"call_index": index, **{k: v for k, v in failure.details.items() if k != "message"}},
                message=f"call {index}: {failure.details['message']}",
                **counts,
            )
    if not reference:
        return VerifyResult.fail(
            UNEXPECTED_CALL,
            parsed=[c.to_dict() for c in calls],
            mismatch={"call_index": 0, "function": calls[0].name},
            message=f"no tool applies to this request, but the completion called {calls[0].name!r}",
            **counts,
        )
    return match_calls(calls, reference, specs_by_name, reward_mode=reward_mode, string_match=string_match)


__all__ = [
    "ABSTAIN_MODES",
    "CALL_FORMATS",
    "INVALID_ARGUMENTS",
    "MAX_CALLS",
    "MAX_CHARS",
    "MAX_JSON_DEPTH",
    "MISSING_ARGUMENT",
    "NO_CALL",
    "REWARD_MODES",
    "STRING_MATCH_MODES",
    "UNEXPECTED_ARGUMENT",
    "UNEXPECTED_CALL",
    "UNKNOWN_FUNCTION",
    "WRONG_COUNT",
    "WRONG_FUNCTION",
    "WRONG_VALUE",
    "FunctionCall",
    "ParsedCompletion",
    "ToolCallParseError",
    "arguments_schema",
    "function_name",
    "json_depth_exceeds",
    "match_calls",
    "normalise_string",
    "parse_tool_calls",
    "resolve_function",
    "to_json_schema",
    "unwrap_spec",
    "validate_arguments",
    "validate_call",
    "values_equal",
    "verify_tool_calls",
]
