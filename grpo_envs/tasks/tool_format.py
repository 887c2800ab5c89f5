"""How tool tasks are shown to a policy: tool specs in the prompt, the call protocol, task categories."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from grpo_envs.verify.tool_call import ABSTAIN_MODES

#: BFCL's single-step categories, which ToolCall-v0 generates and loads.
TOOL_CALL_CATEGORIES = ("simple", "multiple", "parallel", "irrelevance")
#: Difficulty levels of the generated tool tasks.
LEVELS = (1, 2, 3)


def format_tools(specs: Sequence[Mapping[str, Any]]) -> str:
    """The specs as a JSON list, one function per line."""
    return "[\n" + ",\n".join(json.dumps(dict(spec), ensure_ascii=False) for spec in specs) + "\n]"


def tool_call_protocol(abstain: str = "empty_list") -> str:
    """How ToolCall-v0 expects calls to be written (the instructions in every prompt)."""
    if abstain not in ABSTAIN_MODES:
        raise ValueError(f"abstain={abstain!r} is not supported; use one of {ABSTAIN_MODES}")
    none = (
        "If none of the tools fits the request, reply with an empty list: []"
        if abstain == "empty_list"
        else "If none of the tools fits the request, reply in plain text."
    )
    return (
        'Reply with the function call(s) that serve the request, as JSON {"name": <function name>, '
        '"arguments": {<argument>: <value>, ...}} inside <tool_call></tool_call> tags, one tag per call. ' + none
    )


TOOL_USE_PROTOCOL = (
    'To call a tool, reply with {"name": <tool name>, "arguments": {...}} inside <tool_call></tool_call> '
    "tags (one tag per call). Each result comes back inside <tool_response></tool_response> tags. "
    "When you know the final answer, reply without any tool call, as: Answer: <value>"
)


def format_tool_prompt(request: str, specs: Sequence[Mapping[str, Any]], protocol: str) -> str:
    """The full prompt: the tool specs, the protocol, then the user's request."""
    tools = format_tools(specs)
    return f"You can call these tools (JSON-schema function specs):\n{tools}\n\n{protocol}\n\nUser: {request}"
