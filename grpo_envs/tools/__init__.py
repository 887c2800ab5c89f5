"""Real Python tools for the multi-turn tool-use env, each with a JSON-schema spec.

One concept per module: :mod:`~grpo_envs.tools.calculator`, :mod:`~grpo_envs.tools.units`,
:mod:`~grpo_envs.tools.dates`, :mod:`~grpo_envs.tools.kv_store`, :mod:`~grpo_envs.tools.strings`;
:mod:`~grpo_envs.tools.base` holds :class:`Tool` and the :class:`Toolbox` that executes calls.
"""

from __future__ import annotations

from typing import Any

from grpo_envs.tools.base import Tool, Toolbox, ToolError, ToolOutput, format_value, shared_tool_worker
from grpo_envs.tools.calculator import CALCULATOR
from grpo_envs.tools.dates import DATE_ADD, DATE_DIFF, DAY_OF_WEEK
from grpo_envs.tools.kv_store import KV_DELETE, KV_GET, KV_LIST, KV_SET, KeyValueStore
from grpo_envs.tools.strings import CHANGE_CASE, COUNT_OCCURRENCES, REVERSE_TEXT, TEXT_LENGTH
from grpo_envs.tools.units import UNIT_CONVERTER

#: Every tool of the project, in the order specs are shown.
DEFAULT_TOOLS: tuple[Tool, ...] = (
    CALCULATOR,
    UNIT_CONVERTER,
    DATE_ADD,
    DATE_DIFF,
    DAY_OF_WEEK,
    KV_GET,
    KV_SET,
    KV_DELETE,
    KV_LIST,
    TEXT_LENGTH,
    REVERSE_TEXT,
    CHANGE_CASE,
    COUNT_OCCURRENCES,
)


def default_toolbox(**kwargs: Any) -> Toolbox:
    """A :class:`Toolbox` with all of :data:`DEFAULT_TOOLS`; ``kwargs`` go to :class:`Toolbox`."""
    return Toolbox(DEFAULT_TOOLS, **kwargs)


__all__ = [
    "DEFAULT_TOOLS",
    "KeyValueStore",
    "Tool",
    "ToolError",
    "ToolOutput",
    "Toolbox",
    "default_toolbox",
    "format_value",
    "shared_tool_worker",
]
