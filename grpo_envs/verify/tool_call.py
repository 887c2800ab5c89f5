"""Verify JSON function calls against tool specs and reference calls (the BFCL convention).

Three pure steps, each usable on its own:

1. :func:`parse_tool_calls` reads the calls out of a completion: a JSON object
   ``{"name": ..., "arguments": {...}}`` or a list of them, bare, inside
   ``<tool_call>...</tool_call>`` tags (one tag per call, or a list in one tag) or inside a
   fenced code block. Size and nesting depth are checked *before* ``json.loads`` sees the text.
2. :func:`validate_call` checks a call against its JSON-schema spec with ``jsonschema``
   (BFCL's ``dict``/``float``/``tuple``/``any`` type names are translated first).
3. :func:`match_calls` compares the calls with the reference, which uses the format of
   BFCL's ``possible_answer`` files: ``[{"func_name": {"param": [acceptable values]}}]``.
   ``""`` in a parameter's list means the parameter may be omitted; parallel calls match in
   any order; numbers compare by value (``5 == 5.0``, but ``True != 1``); strings compare after
   BFCL's normalisation (lower case, without spaces and ``,./-_*^``).

:func:`verify_tool_calls` chains the three and returns a
:class:`~grpo_envs.verify.result.VerifyResult` whose ``details`` name the first call or
argument that was wrong. Nothing here executes a call.

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

import functools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from grpo_envs.verify.result import ERROR, PARSE_FAILED, VerifyResult

# Reasons of this verifier, beyond the shared ones (correct, parse_failed, error).
NO_CALL = "no_call"  #: the reference has calls, the completion made none
UNEXPECTED_CALL = "unexpected_call"  #: no tool applies, but the completion called one
UNKNOWN_FUNCTION = "unknown_function"  #: a call names a function that is not in the specs
INVALID_ARGUMENTS = "invalid_arguments"  #: a call's arguments break its JSON schema
WRONG_COUNT = "wrong_count"  #: the number of calls differs from the reference
WRONG_FUNCTION = "wrong_function"  #: a valid function, but not the one the reference calls
WRONG_VALUE = "wrong_value"  #: an argument's value is not among the acceptable ones
MISSING_ARGUMENT = "missing_argument"  #: the reference needs an argument the call omitted
UNEXPECTED_ARGUMENT = "unexpected_argument"  #: the call passes an argument the reference has not

#: Longest completion the parser reads, in characters. The env's action space is 16 384
#: characters by default; this bound protects direct callers of the verifier.
MAX_CHARS = 65_536
#: Deepest JSON nesting accepted. Real tool calls nest 3-5 levels; the bound keeps
#: ``json.loads`` (recursive in C and Python) far from the interpreter's recursion limit.
MAX_JSON_DEPTH = 32
#: Most calls one completion may make (BFCL's largest parallel tasks have fewer than 10).
MAX_CALLS = 64
#: Bipartite assignment by dynamic programming is exponential in the smaller side; above
#: this many calls, fraction mode falls back to a greedy assignment.
MAX_EXACT_ASSIGNMENT = 12

#: Longest schema-error message kept verbatim (jsonschema's messages quote the offending value).
MAX_MESSAGE_CHARS = 300

REWARD_MODES = ("binary", "fraction")
#: How an irrelevance task (reference ``[]``) must be answered: ``"empty_list"`` needs an
#: explicit empty call list ``[]`` (the xLAM convention; random text then scores 0), while
#: ``"plain_text"`` is BFCL's rule: any completion without a function call is right.
ABSTAIN_MODES = ("empty_list", "plain_text")
#: String comparison per parameter: ``bfcl`` (BFCL's normalisation), ``ignore_space``
#: (whitespace removed, case kept: for expressions, where ``*`` vs ``/`` matters), ``exact``.
STRING_MATCH_MODES = ("bfcl", "ignore_space", "exact")

_TAG_RE = re.compile(r"<tool_call>(.*?)(?:</tool_call>|\Z)", re.DOTALL | re.IGNORECASE)
_FENCE_RE = re.compile(r"```[ \t]*([A-Za-z0-9_-]*)[ \t]*\n?(.*?)(?:```|\Z)", re.DOTALL)
_EMBEDDED_CALL_RE = re.compile(r"[\[{]\s*\{?\s*\"(?:name|function|tool_calls)\"\s*:")
_BFCL_PUNCTUATION_RE = re.compile(r"[ ,./\-_*^]")
_WHITESPACE_RE = re.compile(r"\s+")


class ToolCallParseError(ValueError):
    """The completion tried to call a tool but the call could not be read."""


@dataclass(frozen=True)
class FunctionCall:
    """One parsed call: the function's name and its arguments (a JSON object)."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The call as ``{"name": ..., "arguments": {...}}``."""
        return {"name": self.name, "arguments": self.arguments}


@dataclass(frozen=True)
class ParsedCompletion:
    """What :func:`parse_tool_calls` read: the calls, and whether an explicit (possibly empty)
    call list was present (``[]`` is an explicit "no call"; plain text is not)."""

    calls: list[FunctionCall]
    explicit: bool


# -- parsing -------------------------------------------------------------------------------


def json_depth_exceeds(text: str, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """Whether brackets outside JSON strings nest deeper than ``max_depth`` (a linear scan,
    so that a ``[[[[...`` bomb is refused before any recursive parser sees it)."""
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > max_depth:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _loads_bounded(text: str, max_depth: int) -> Any:
    if json_depth_exceeds(text, max_depth):
        raise ToolCallParseError(f"JSON nests deeper than {max_depth} levels")
    try:
        value, _ = json.JSONDecoder().raw_decode(text.strip())  # trailing text after the JSON is ignored
    except (ValueError, RecursionError) as exc:  # ValueError covers JSONDecodeError and huge ints
        raise ToolCallParseError(f"malformed JSON: {exc}") from None
    return value


def _as_call(obj: Any, max_depth: int) -> list[FunctionCall]:
    """Turn one decoded JSON value into calls (a call object, an OpenAI-style wrapper, a list)."""
    if isinstance(obj, list):
        calls: list[FunctionCall] = []
        for item in obj:
            calls.extend(_as_call(item, max_depth))
        return calls
    if not isinstance(obj, dict):
        raise ToolCallParseError(
            f'expected a call object {{"name": ..., "arguments": {{...}}}}, got {type(obj).__name__}'
        )
    if "tool_calls" in obj and "name" not in obj:
        return _as_call(obj["tool_calls"], max_depth)
    if "function" in obj and "name" not in obj and isinstance(obj["function"], dict):
        return _as_call(obj["function"], max_depth)  # OpenAI: {"type": "function", "function": {...}}
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        raise ToolCallParseError('a call needs a "name" string: {"name": ..., "arguments": {...}}')
    arguments = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(arguments, str):  # OpenAI sends the arguments as a JSON-encoded string
        arguments = _loads_bounded(arguments, max_depth) if arguments.strip() else {}
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise ToolCallParseError(f'"arguments" of {name!r} must be a JSON object, got {type(arguments).__name__}')
    return [FunctionCall(name=name, arguments=arguments)]


def parse_tool_calls(
    text: str, *, max_chars: int = MAX_CHARS, max_depth: int = MAX_JSON_DEPTH, max_calls: int = MAX_CALLS
) -> ParsedCompletion:
    """Read the function calls in a completion.

    Looks, in this order, for ``<tool_call>`` tags (an unclosed last tag runs to the end),
    fenced code blocks whose content starts with ``{`` or ``[``, a completion that is itself
    JSON, and finally a call object embedded in prose (``... {"name": ...``). Text with none
    of these is plain text: no calls, ``explicit=False``.

    :param text: the completion.
    :param max_chars: longer completions are refused unread.
    :param max_depth: deeper JSON nesting is refused before decoding.
    :param max_calls: more calls than this are refused.
    :raises ToolCallParseError: the completion attempts a call that cannot be read.
    """
    if len(text) > max_chars:
        raise ToolCallParseError(f"completion has {len(text)} characters; the limit is {max_chars}")
    blocks = [m.group(1) for m in _TAG_RE.finditer(text)]
    if not blocks:
        blocks = [
            body
            for lang, body in _FENCE_RE.findall(text)
            if lang.lower() in ("", "json", "tool_call", "tool_code") and body.strip()[:1] in ("{", "[")
        ]
    if not blocks:
        stripped = text.strip()
        if stripped[:1] in ("{", "["):
            blocks = [stripped]
        else:
            match = _EMBEDDED_CALL_RE.search(text)
            if match is None:
                return ParsedCompletion(calls=[], explicit=False)
            blocks = [text[match.start() :]]
    calls: list[FunctionCall] = []
    for block in blocks:
        if not block.strip():
            raise ToolCallParseError("empty <tool_call> block")
        calls.extend(_as_call(_loads_bounded(block, max_depth), max_depth))
        if len(calls) > max_calls:
            raise ToolCallParseError(f"more than {max_calls} calls in one completion")
    return ParsedCompletion(calls=calls, explicit=True)


# -- validation against JSON-schema specs --------------------------------------------------

#: BFCL writes Python type names where JSON Schema has its own.
_BFCL_TYPES = {
    "dict": "object",
    "float": "number",
    "tuple": "array",
    "list": "array",
    "int": "integer",
    "str": "string",
    "bool": "boolean",
}


def to_json_schema(schema: Any) -> Any:
    """Translate a BFCL-style parameter schema (``dict``, ``float``, ``tuple``, ``any``) to
    JSON Schema; a JSON-Schema input comes back unchanged. Unknown type names are dropped
    (no type constraint) rather than rejected."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type":
            names = value if isinstance(value, list) else [value]
            mapped = [_BFCL_TYPES.get(n, n) for n in names if isinstance(n, str)]
            known = [n for n in mapped if n in ("object", "number", "array", "integer", "string", "boolean", "null")]
            if known and len(known) == len(mapped):
                out["type"] = known if isinstance(value, list) else known[0]
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: to_json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = to_json_schema(value)
        elif key in ("anyOf", "oneOf", "allOf", "prefixItems") and isinstance(value, list):
            out[key] = [to_json_schema(sub) for sub in value]
        elif key in ("optional", "default"):
            continue  # BFCL annotations; "default" is documentation only in JSON Schema too
        else:
            out[key] = value
    return out


def function_name(spec: Mapping[str, Any]) -> str:
    """The name of a spec, given flat (``{"name": ...}``) or OpenAI-wrapped (``{"function": {...}}``)."""
    return str(unwrap_spec(spec)["name"])


def unwrap_spec(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return the flat function spec of an OpenAI-style ``{"type": "function", "function": {...}}``."""
    inner = spec.get("function")
    return inner if isinstance(inner, Mapping) and "name" in inner else spec


@functools.lru_cache(maxsize=1024)
def _validator(schema_json: str) -> Draft202012Validator:
    schema = json.loads(schema_json)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def arguments_schema(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON schema of a function's arguments. Extra arguments are refused unless the spec
    allows them (BFCL counts an unexpected parameter as an error)."""
    parameters = to_json_schema(dict(unwrap_spec(spec).get("parameters") or {}))
    parameters.setdefault("type", "object")
    if parameters.get("type") == "object":
        parameters.setdefault("additionalProperties", False)
    return parameters


def validate_arguments(spec: Mapping[str, Any], arguments: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """Check ``arguments`` against the spec's schema.

    :returns: ``(None, None)`` when valid, else ``(argument_name_or_None, message)`` for the
        first error found (``jsonschema``'s best match).
    :raises jsonschema.exceptions.SchemaError: the spec itself is not a valid schema.
    """
    validator = _validator(json.dumps(arguments_schema(spec), sort_keys=True))
    errors = sorted(validator.iter_errors(dict(arguments)), key=lambda e: (len(e.path), str(e.message)))
    if not errors:
        return None, None
    error = errors[0]
    argument = str(error.path[0]) if error.path else None
    if argument is None and error.validator == "required":
        missing = [name for name in error.validator_value if name not in arguments]
        argument = missing[0] if missing else None
    if argument is None and error.validator == "additionalProperties":
        extra = sorted(set(arguments) - set(error.schema.get("properties", {})))
        argument = extra[0] if extra else None
    message = error.message
    if len(message) > MAX_MESSAGE_CHARS:  # jsonschema quotes the whole value: name the rule instead
        rule = f"{error.validator} = {error.validator_value!r}"[:MAX_MESSAGE_CHARS]
        message = f"the value of {argument!r} breaks the schema rule {rule}"
    return argument, message


def resolve_function(name: str, specs_by_name: Mapping[str, Any]) -> str | None:
    """The spec name a called name refers to: the same name, or one whose dots became
    underscores (OpenAI-style APIs forbid dots, so BFCL's ``math.factorial`` is sent as
    ``math_factorial``)."""
    if name in specs_by_name:
        return name
    for spec_name in specs_by_name:
        if spec_name.replace(".", "_") == name:
            return spec_name
    return None


def validate_call(call: FunctionCall, specs_by_name: Mapping[str, Mapping[str, Any]]) -> VerifyResult | None:
    """``None`` when the call names a known function with schema-valid arguments, else the
    failing verdict (``unknown_function`` or ``invalid_arguments``, with details)."""
    resolved = resolve_function(call.name, specs_by_name)
    if resolved is None:
        available = sorted(specs_by_name)
        return VerifyResult.fail(
            UNKNOWN_FUNCTION,
            function=call.name,
            message=f"no function named {call.name!r}; available: {available}",
        )
    argument, message = validate_arguments(specs_by_name[resolved], call.arguments)
    if message is None:
        return None
    return VerifyResult.fail(
        INVALID_ARGUMENTS,
        function=call.name,
        argument=argument,
        message=f"arguments of {call.name!r} are invalid: {message}",
    )


# -- matching (BFCL possible answers) ------------------------------------------------------


def normalise_string(text: str, mode: str = "bfcl") -> str:
    """BFCL's string normalisation (lower case, drop spaces and ``,./-_*^``, ``'`` -> ``"``),
    or whitespace removal only (``ignore_space``), or nothing (``exact``)."""
    if mode == "exact":
        return text
    if mode == "ignore_space":
        return _WHITESPACE_RE.sub("", text)
    return _BFCL_PUNCTUATION_RE.sub("", text).lower().replace("'", '"')


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_possible_answer_dict(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(isinstance(v, list) for v in value.values())


def values_equal(value: Any, expected: Any, mode: str = "bfcl") -> bool:
    """Whether an argument value equals one acceptable value (recursively for lists and dicts)."""
    if isinstance(expected, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(expected, bool) and value == expected
    if _is_number(expected):
        return _is_number(value) and (value == expected or math.isclose(value, expected, rel_tol=1e-9, abs_tol=0.0))
    if isinstance(expected, str):
        return isinstance(value, str) and normalise_string(value, mode) == normalise_string(expected, mode)
    if isinstance(expected, list):
        return (
            isinstance(value, list)
            and len(value) == len(expected)
            and all(values_equal(v, e, mode) for v, e in zip(value, expected))
        )
    if isinstance(expected, dict):
        if not isinstance(value, dict):
            return False
        if _is_possible_answer_dict(expected):  # BFCL: a dict parameter lists acceptable values per key
            return _match_arguments(value, expected, {}, mode)[0]
        return set(value) == set(expected) and all(values_equal(value[k], expected[k], mode) for k in expected)
    return value == expected


def _match_arguments(
    arguments: Mapping[str, Any], possible: Mapping[str, list[Any]], string_match: Mapping[str, str], default_mode: str
) -> tuple[bool, int, int, dict[str, Any] | None]:
    """Compare one call's arguments with one reference call's possible answers.

    :returns: ``(all_ok, n_right, n_total, first_mismatch)``; every argument named by either
        side counts once in ``n_total``.
    """
    names = list(possible) + [name for name in arguments if name not in possible]
    right, first = 0, None
    for name in names:
        acceptable = possible.get(name)
        mode = string_match.get(name, default_mode)
        if acceptable is None:
            problem = {
                "reason": UNEXPECTED_ARGUMENT,
                "argument": name,
                "got": arguments[name],
                "message": f"argument {name!r} is not expected",
            }
        elif name not in arguments:
            if "" in acceptable:
                right += 1
                continue
            problem = {
                "reason": MISSING_ARGUMENT,
                "argument": name,
                "expected": acceptable,
                "message": f"argument {name!r} is missing; expected one of {acceptable!r}",
            }
        elif any(values_equal(arguments[name], option, mode) for option in acceptable):
            right += 1
            continue
        else:
            problem = {
                "reason": WRONG_VALUE,
                "argument": name,
                "got": arguments[name],
                "expected": acceptable,
                "message": f"argument {name!r} = {arguments[name]!r} is not one of {acceptable!r}",
            }
        first = first or problem
    return first is None, right, len(names), first


def _compare(
    call: FunctionCall,
    reference: Mapping[str, Mapping[str, list[Any]]],
    specs_by_name: Mapping[str, Any],
    string_match: Mapping[str, str],
) -> tuple[bool, float, dict[str, Any]]:
    """(full match, fraction of arguments right, first mismatch) of one call vs one reference call."""
    ((ref_name, possible),) = reference.items()
    resolved = resolve_function(call.name, specs_by_name) or call.name
    if resolved != ref_name:
        return (
            False,
            0.0,
            {
                "reason": WRONG_FUNCTION,
                "got": call.name,
                "expected": ref_name,
                "message": f"called {call.name!r}, expected {ref_name!r}",
            },
        )
    ok, right, total, mismatch = _match_arguments(call.arguments, possible, string_match, "bfcl")
    return ok, (right / total if total else 1.0), (mismatch or {})


def _max_matching(adjacent: list[list[bool]]) -> list[int]:
    """Kuhn's augmenting paths: for each reference i, the matched call index or -1."""
    n_calls = len(adjacent[0]) if adjacent else 0
    owner = [-1] * n_calls

    def augment(i: int, seen: list[bool]) -> bool:
        for j in range(n_calls):
            if adjacent[i][j] and not seen[j]:
                seen[j] = True
                if owner[j] == -1 or augment(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    for i in range(len(adjacent)):
        augment(i, [False] * n_calls)
    match = [-1] * len(adjacent)
    for j, i in enumerate(owner):
        if i >= 0:
            match[i] = j
    return match


def _best_assignment_score(scores: list[list[float]]) -> float:
    """Largest sum of scores over one-to-one assignments of references to calls."""
    n_ref, n_calls = len(scores), len(scores[0]) if scores else 0
    if min(n_ref, n_calls) == 0:
        return 0.0
    if n_ref > n_calls:  # DP is exponential in the rows' count: put the smaller side there
        scores = [list(col) for col in zip(*scores)]
        n_ref, n_calls = n_calls, n_ref
    if n_ref > MAX_EXACT_ASSIGNMENT:
        used: set[int] = set()
        total = 0.0
        for row in scores:
            j = max((j for j in range(n_calls) if j not in used), key=lambda j: row[j])
            used.add(j)
            total += row[j]
        return total
    best = {0: 0.0}  # mask of used rows -> best total after the columns seen so far
    for j in range(n_calls):
        nxt = dict(best)
        for mask, total in best.items():
            for i in range(n_ref):
                if not mask & (1 << i):
                    key = mask | (1 << i)
                    nxt[key] = max(nxt.get(key, -1.0), total + scores[i][j])
        best = nxt
    return max(best.values())


def match_calls(
    calls: Sequence[FunctionCall],
    reference: Sequence[Mapping[str, Mapping[str, list[Any]]]],
    specs_by_name: Mapping[str, Any],
    *,
    reward_mode: str = "binary",
    string_match: Mapping[str, str] | None = None,
) -> VerifyResult:
    """Match schema-valid calls against BFCL possible answers, in any order.

    :param calls: the parsed calls (at least one).
    :param reference: one ``{"func_name": {"param": [acceptable values]}}`` per expected call.
    :param specs_by_name: the specs, to resolve dotted names sent with underscores.
    :param reward_mode: ``"binary"`` (1.0 only for a full match) or ``"fraction"``: the best
        one-to-one assignment's share of right arguments, divided by ``max(#calls, #reference)``.
    :param string_match: per-parameter string comparison (see :data:`STRING_MATCH_MODES`).
    """
    string_match = dict(string_match or {})
    parsed = [c.to_dict() for c in calls]
    compared = [[_compare(c, ref, specs_by_name, string_match) for c in calls] for ref in reference]
    matching = _max_matching([[cell[0] for cell in row] for row in compared])
    n_matched = sum(j >= 0 for j in matching)
    counts = {"num_calls": len(calls), "expected_calls": len(reference), "matched_calls": n_matched}
    if n_matched == len(reference) == len(calls):
        return VerifyResult.success(parsed=parsed, **counts)

    # Explain the first unmatched reference call against the closest unused call.
    used = {j for j in matching if j >= 0}
    mismatch: dict[str, Any] = {}
    for i, j in enumerate(matching):
        if j >= 0:
            continue
        candidates = [k for k in range(len(calls)) if k not in used] or list(range(len(calls)))
        k = max(candidates, key=lambda k: (compared[i][k][1] + (compared[i][k][2].get("reason") != WRONG_FUNCTION), -k))
        mismatch = {"reference_index": i, "call_index": k, "function": calls[k].name, **compared[i][k][2]}
        break
    if not mismatch:  # every reference call matched: the surplus calls are the problem
        k = min(j for j in range(len(calls)) if j not in used)
        mismatch = {
            "call_index": k,
            "function": calls[k].name,
            "reason": UNEXPECTED_CALL,
            "message": f"call {k} ({calls[k].name}) is not in the reference",
        }
    if len(calls) != len(reference):
        reason = WRONG_COUNT
        message = f"made {len(calls)} call(s), expected {len(reference)}"
        if mismatch:
            message += f"; {mismatch['message']}"
    else:
        reason = mismatch["reason"]
        message = f"call {mismatch['call_index']} ({mismatch['function']}): {mismatch['message']}"
    mismatch.pop("message", None)
    reward = 0.0
    if reward_mode == "fraction":
        scores = [[cell[1] for cell in row] for row in compared]
        reward = _best_assignment_score(scores) / max(len(calls), len(reference))
    return VerifyResult(
        reward=reward,
        correct=False,
        reason=reason,
        parsed=parsed,
        details={**counts, "mismatch": mismatch, "message": message},
    )


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
        return VerifyResult.fail(PARSE_FAILED, message=str(exc))
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
