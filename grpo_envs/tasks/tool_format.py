"""How tool tasks are shown to a policy: tool specs in the prompt, the call protocol, task categories.

Two ways to show the specs (the envs' ``tool_prompt`` argument, :data:`TOOL_PROMPT_MODES`):

- ``"text"`` (the default): the prompt is one string with the specs pasted in
  (:func:`format_tool_prompt`);
- ``"template"``: the prompt is a :class:`ToolPrompt`, the same string, which also carries the
  conversation without the specs (``.messages``: a system message with the protocol, then the
  user's request) and the specs in the form transformers' chat templates take
  (``.tools``), so that a policy with a tool-aware chat template can render them natively
  (``apply_chat_template(prompt.messages, tools=prompt.tools)``). A policy that knows nothing
  of this reads the string and sees exactly the ``"text"`` prompt.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from grpo_envs.verify.tool_call import ABSTAIN_MODES
from grpo_envs.verify.tool_schema import arguments_schema, unwrap_spec

#: BFCL's single-step categories, which ToolCall-v0 generates and loads.
TOOL_CALL_CATEGORIES = ("simple", "multiple", "parallel", "irrelevance")
#: Difficulty levels of the generated tool tasks.
LEVELS = (1, 2, 3)
#: How the envs show tool specs: pasted into the prompt text, or handed to the chat template.
TOOL_PROMPT_MODES = ("text", "template")
_HEADER = "You can call these tools (JSON-schema function specs):\n"
_USER = "User: "


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
    return f"{_HEADER}{tools}\n\n{protocol}\n\n{_USER}{request}"


def native_tool_call_protocol(abstain: str = "empty_list") -> str:
    """ToolCall-v0's instructions when the chat template shows the specs and says how to call:
    only what the template cannot know, i.e. how to answer when no tool fits."""
    if abstain not in ABSTAIN_MODES:
        raise ValueError(f"abstain={abstain!r} is not supported; use one of {ABSTAIN_MODES}")
    none = "reply with an empty list: []" if abstain == "empty_list" else "reply in plain text"
    return f"Call the function(s) that serve the user's request. If none of the tools fits the request, {none}"


NATIVE_TOOL_USE_PROTOCOL = (
    "Call the tools you need; each result comes back to you. "
    "When you know the final answer, reply without any tool call, as: Answer: <value>"
)


def chat_template_tools(specs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The specs as transformers' chat templates take them (``tools=``):
    ``{"type": "function", "function": {"name", "description", "parameters"}}``, with BFCL's
    type names (``dict``, ``float``, ...) turned into JSON Schema."""
    tools = []
    for spec in specs:
        flat = unwrap_spec(spec)
        function = {"name": flat["name"], "description": flat.get("description", "")}
        tools.append({"type": "function", "function": {**function, "parameters": arguments_schema(flat)}})
    return tools


def prompt_request(prompt: str) -> str | None:
    """The user's request inside a prompt written by :func:`format_tool_prompt`, or None when
    ``prompt`` was written some other way (neither the specs nor the protocol span a blank line,
    so the request is what follows the second one)."""
    parts = prompt.split("\n\n", 2)
    if len(parts) != 3 or not parts[0].startswith(_HEADER) or not parts[2].startswith(_USER):
        return None
    return parts[2][len(_USER) :]


class ToolPrompt(str):
    """A prompt that is the ``"text"`` prompt (a ``str``, specs pasted in) and also carries its
    chat form for a tool-aware chat template.

    :param text: the prompt as text (what a policy without tool support reads).
    :param messages: the conversation without the specs (``{"role", "content"}`` dicts).
    :param tools: the specs in :func:`chat_template_tools`' form.

    Example::

        >>> specs = [{"name": "f", "description": "Does f.", "parameters": {"type": "dict", "properties": {}}}]
        >>> text = format_tool_prompt("Do f.", specs, tool_call_protocol())
        >>> prompt = as_tool_prompt(text, specs, native_tool_call_protocol())
        >>> prompt == text, prompt.messages[-1]
        (True, {'role': 'user', 'content': 'Do f.'})
        >>> prompt.tools[0]["function"]["parameters"]["type"]
        'object'
    """

    messages: tuple[dict[str, str], ...]
    tools: tuple[dict[str, Any], ...]

    def __new__(
        cls, text: str, messages: Sequence[Mapping[str, str]], tools: Sequence[Mapping[str, Any]]
    ) -> ToolPrompt:
        prompt = super().__new__(cls, text)
        prompt.messages = tuple(dict(m) for m in messages)
        prompt.tools = tuple(dict(t) for t in tools)
        return prompt

    def __reduce__(self) -> tuple[Any, ...]:  # pickles (vector envs, deepcopy) keep the chat form
        return (ToolPrompt, (str(self), self.messages, self.tools))


def as_tool_prompt(prompt: str, specs: Sequence[Mapping[str, Any]], native_protocol: str) -> ToolPrompt:
    """A task's text prompt with its chat form: when the prompt was written by
    :func:`format_tool_prompt`, the request and ``native_protocol``; otherwise (a task written
    some other way) the whole prompt as the user's message."""
    request = prompt_request(prompt)
    if request is None:
        messages = [{"role": "user", "content": prompt}]
    else:
        messages = [{"role": "system", "content": native_protocol}, {"role": "user", "content": request}]
    return ToolPrompt(prompt, messages, chat_template_tools(specs))
