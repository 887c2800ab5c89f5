"""How a language-model policy turns an observation into tokens: the tokenizer's chat template.

An observation is a prompt string or a list of chat messages. With a chat template the
observation is rendered by it, with a generation prompt; without one, each message's text is
followed by a newline. A tool env's prompt that carries specs (``.tools`` and ``.messages``,
:class:`~grpo_envs.tasks.tool_format.ToolPrompt`) goes through ``apply_chat_template(tools=)``
when the template shows tools. An environment's reply in a multi-turn episode is inserted as
the template writes that role's message.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

Message = dict[str, str]
Observation = str | Sequence[Message]


class ChatRenderer:
    """Renders observations and environment turns with ``tokenizer``'s chat template.

    :param tokenizer: a Hugging Face tokenizer (with or without a chat template).
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self._tools_support: tuple[str, bool] | None = None  # (template, shows tools), checked once

    def render(self, observation: Observation) -> str:
        """The text the model conditions on: the chat template (with a generation prompt) when
        the tokenizer has one, else the raw messages, each followed by a newline.

        An observation that carries tool specs (``.tools`` and ``.messages``, as the tool envs'
        :class:`~grpo_envs.tasks.tool_format.ToolPrompt` does with ``tool_prompt="template"``)
        is rendered as ``apply_chat_template(observation.messages, tools=observation.tools)``
        when the chat template renders tools; otherwise as the text it also is (specs pasted in)."""
        tools, tool_messages = getattr(observation, "tools", None), getattr(observation, "messages", None)
        if tools and tool_messages and self.renders_tools():
            return self.tokenizer.apply_chat_template(
                [dict(m) for m in tool_messages],
                tools=[dict(t) for t in tools],
                tokenize=False,
                add_generation_prompt=True,
            )
        messages = [{"role": "user", "content": observation}] if isinstance(observation, str) else list(observation)
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return "".join(m["content"] + "\n" for m in messages)

    def renders_tools(self) -> bool:
        """Whether the tokenizer's chat template shows ``tools=`` (a template that ignores them,
        or has no tool section, renders the same text with and without them)."""
        template = getattr(self.tokenizer, "chat_template", None)
        if not template:
            return False
        key = json.dumps(template, sort_keys=True) if not isinstance(template, str) else template
        if self._tools_support is not None and self._tools_support[0] == key:
            return self._tools_support[1]
        probe = [{"role": "user", "content": "x"}]
        tool = {"type": "function", "function": {"name": "probe_tool", "description": "", "parameters": {}}}
        try:
            with_tools = self.tokenizer.apply_chat_template(probe, tools=[tool], tokenize=False)
            without = self.tokenizer.apply_chat_template(probe, tokenize=False)
            supported = with_tools != without
        except Exception:  # noqa: BLE001 - a template that fails on tools is a template without them
            supported = False
        self._tools_support = (key, supported)
        return supported

    def encode_context(self, observation: Observation) -> list[int]:
        """Token ids of one rendered observation."""
        has_template = bool(getattr(self.tokenizer, "chat_template", None))
        # A chat template writes its own BOS; a raw prompt gets the tokenizer's default specials.
        return list(self.tokenizer(self.render(observation), add_special_tokens=not has_template)["input_ids"])

    def encode_env_turn(self, text: str, role: str = "tool") -> list[int]:
        """Tokens that insert an environment message (e.g. a tool's output) after a finished
        policy turn and open the policy's next turn. They are context: never in the loss."""
        if getattr(self.tokenizer, "chat_template", None):
            base = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]
            try:
                before = self.tokenizer.apply_chat_template(base, tokenize=False)
                after = self.tokenizer.apply_chat_template(
                    [*base, {"role": role, "content": text}], tokenize=False, add_generation_prompt=True
                )
            except Exception:
                if role == "user":
                    raise
                return self.encode_env_turn(text, role="user")
            if after.startswith(before):
                return list(self.tokenizer(after[len(before) :], add_special_tokens=False)["input_ids"])
        return list(self.tokenizer(text + "\n", add_special_tokens=False)["input_ids"])
