"""Read the function calls out of a completion, with size and nesting checked before ``json.loads``.

:func:`parse_tool_calls` accepts a JSON object ``{"name": ..., "arguments": {...}}`` or a list
of them, bare, inside ``<tool_call>...</tool_call>`` tags (one tag per call, or a list in one
tag) or inside a fenced code block.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

#: Longest completion the parser reads, in characters. The env's action space is 16 384
#: characters by default; this bound protects direct callers of the verifier.
MAX_CHARS = 65_536
#: Deepest JSON nesting accepted. Real tool calls nest 3-5 levels; the bound keeps
#: ``json.loads`` (recursive in C and Python) far from the interpreter's recursion limit.
MAX_JSON_DEPTH = 32
#: Most calls one completion may make (BFCL's largest parallel tasks have fewer than 10).
MAX_CALLS = 64
_TAG_RE = re.compile(r"<tool_call>(.*?)(?:</tool_call>|\Z)", re.DOTALL | re.IGNORECASE)
_FENCE_RE = re.compile(r"```[ \t]*([A-Za-z0-9_-]*)[ \t]*\n?(.*?)(?:```|\Z)", re.DOTALL)
_EMBEDDED_CALL_RE = re.compile(r"[\[{]\s*\{?\s*\"(?:name|function|tool_calls)\"\s*:")
#: Llama 3.x marks a tool call with this special token (when the tokenizer keeps it).
PYTHON_TAG = "<|python_tag|>"
#: Mistral's tool-call marker; a JSON list or ``name[ARGS]{...}`` follows it.
MISTRAL_TOOL_CALLS = "[TOOL_CALLS]"
# Mistral's newer tokenizers (v11+): name, an optional [CALL_ID]<id>, then [ARGS] and a JSON object.
_MISTRAL_ARGS_RE = re.compile(r"\s*([A-Za-z_][\w.\-]{0,255})\s*(?:\[CALL_ID\]\s*[\w\-]{0,64}\s*)?\[ARGS\]")
#: What :attr:`ParsedCompletion.format` may say: the syntax the calls were read from.
CALL_FORMATS = (
    "hermes",  # <tool_call>{...}</tool_call> (Hermes, Qwen 2/2.5/3, today's protocol)
    "mistral",  # [TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]
    "mistral_args",  # [TOOL_CALLS]name[ARGS]{...} (Mistral's v11+ tokenizers)
    "llama_python_tag",  # <|python_tag|>{"name": ..., "parameters": {...}}
    "llama3_json",  # a bare {"name": ..., "parameters": {...}} (Llama 3.x JSON tool calling)
    "code_fence",  # ```json ... ```
    "json",  # the completion is a JSON call object or list
    "embedded",  # a call object in prose
)


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
    #: one of :data:`CALL_FORMATS`, or None for plain text
    format: str | None = None


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


def _loads_sequence(text: str, max_depth: int) -> list[Any]:
    """JSON values one after another (``{...}; {...}``), as Llama writes parallel calls after
    ``<|python_tag|>``; reading stops at the first text that is not JSON."""
    if json_depth_exceeds(text, max_depth):
        raise ToolCallParseError(f"JSON nests deeper than {max_depth} levels")
    decoder, pos, text = json.JSONDecoder(), 0, text.strip()
    values: list[Any] = []
    while pos < len(text):
        try:
            value, pos = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError) as exc:
            if not values:
                raise ToolCallParseError(f"malformed JSON: {exc}") from None
            break
        values.append(value)
        while pos < len(text) and text[pos] in " \t\r\n;,":
            pos += 1
    return values


def _mistral_calls(text: str, max_depth: int, max_calls: int) -> tuple[list[Any], str]:
    """The call objects after each ``[TOOL_CALLS]`` marker, and the format they were written in."""
    values: list[Any] = []
    formats = set()
    for segment in text.split(MISTRAL_TOOL_CALLS)[1:]:
        body = segment.strip()
        if json_depth_exceeds(body, max_depth):
            raise ToolCallParseError(f"JSON nests deeper than {max_depth} levels")
        if body[:1] in ("[", "{"):
            values.append(_loads_bounded(body, max_depth))
            formats.add("mistral")
            continue
        pos, found = 0, False
        while (match := _MISTRAL_ARGS_RE.match(body, pos)) is not None:
            if len(values) >= max_calls:
                raise ToolCallParseError(f"more than {max_calls} calls in one completion")
            try:
                arguments, pos = json.JSONDecoder().raw_decode(body, match.end() + _leading_space(body, match.end()))
            except (ValueError, RecursionError) as exc:
                raise ToolCallParseError(f"malformed JSON after [ARGS]: {exc}") from None
            values.append({"name": match.group(1), "arguments": arguments})
            found = True
        if not found:
            raise ToolCallParseError(
                'nothing readable after [TOOL_CALLS]: write [TOOL_CALLS][{"name": ..., "arguments": {...}}]'
            )
        formats.add("mistral_args")
    return values, "mistral" if formats == {"mistral"} else "mistral_args"


def _leading_space(text: str, pos: int) -> int:
    return len(text[pos:]) - len(text[pos:].lstrip())


def _uses_parameters(obj: Any) -> bool:
    """Whether a decoded call (or list of calls) names its arguments ``"parameters"`` (Llama 3.x)."""
    if isinstance(obj, list):
        return any(_uses_parameters(item) for item in obj)
    return isinstance(obj, dict) and "parameters" in obj and "arguments" not in obj


def parse_tool_calls(
    text: str, *, max_chars: int = MAX_CHARS, max_depth: int = MAX_JSON_DEPTH, max_calls: int = MAX_CALLS
) -> ParsedCompletion:
    """Read the function calls in a completion.

    Looks, in this order, for a native call marker (``<tool_call>`` tags, where an unclosed last
    tag runs to the end; Mistral's ``[TOOL_CALLS]``; Llama's ``<|python_tag|>``), fenced code
    blocks whose content starts with ``{`` or ``[``, a completion that is itself JSON, and
    finally a call object embedded in prose (``... {"name": ...``). Text with none of these is
    plain text: no calls, ``explicit=False``. A completion that writes calls with two different
    markers is refused: one format per answer, so that a policy cannot hedge between readings.

    :param text: the completion.
    :param max_chars: longer completions are refused unread.
    :param max_depth: deeper JSON nesting is refused before decoding.
    :param max_calls: more calls than this are refused.
    :raises ToolCallParseError: the completion attempts a call that cannot be read.
    """
    if len(text) > max_chars:
        raise ToolCallParseError(f"completion has {len(text)} characters; the limit is {max_chars}")
    markers = [
        name
        for name, present in (
            ("<tool_call>", _TAG_RE.search(text) is not None),
            (MISTRAL_TOOL_CALLS, MISTRAL_TOOL_CALLS in text),
            (PYTHON_TAG, PYTHON_TAG in text),
        )
        if present
    ]
    if len(markers) > 1:
        raise ToolCallParseError(f"calls written in more than one format ({', '.join(markers)}): use one")
    values: list[Any]
    if markers == [MISTRAL_TOOL_CALLS]:
        values, call_format = _mistral_calls(text, max_depth, max_calls)
        return _collect(values, call_format, max_depth, max_calls)
    if markers == [PYTHON_TAG]:
        body = text.split(PYTHON_TAG, 1)[1]
        if not body.strip():
            raise ToolCallParseError(f"nothing after {PYTHON_TAG}")
        return _collect(_loads_sequence(body, max_depth), "llama_python_tag", max_depth, max_calls)
    call_format = "hermes"
    blocks = [m.group(1) for m in _TAG_RE.finditer(text)]
    if not blocks:
        call_format = "code_fence"
        blocks = [
            body
            for lang, body in _FENCE_RE.findall(text)
            if lang.lower() in ("", "json", "tool_call", "tool_code") and body.strip()[:1] in ("{", "[")
        ]
    if not blocks:
        stripped = text.strip()
        if stripped[:1] in ("{", "["):
            blocks, call_format = [stripped], "json"
        else:
            match = _EMBEDDED_CALL_RE.search(text)
            if match is None:
                return ParsedCompletion(calls=[], explicit=False)
            blocks, call_format = [text[match.start() :]], "embedded"
    values = []
    for block in blocks:
        if not block.strip():
            raise ToolCallParseError("empty <tool_call> block")
        values.append(_loads_bounded(block, max_depth))
    if call_format == "json" and _uses_parameters(values):
        call_format = "llama3_json"
    return _collect(values, call_format, max_depth, max_calls)


def _collect(values: list[Any], call_format: str, max_depth: int, max_calls: int) -> ParsedCompletion:
    calls: list[FunctionCall] = []
    for value in values:
        calls.extend(_as_call(value, max_depth))
        if len(calls) > max_calls:
            raise ToolCallParseError(f"more than {max_calls} calls in one completion")
    return ParsedCompletion(calls=calls, explicit=True, format=call_format)
