"""Tool, Toolbox: how the multi-turn env runs a policy's function calls.

A :class:`Tool` is a plain Python function plus its JSON-schema spec. A :class:`Toolbox`
executes calls: it checks the function exists and the arguments fit the schema, runs the
function (in a :class:`~grpo_envs.verify.worker.TimeoutWorker` when the tool is marked
``isolated``), and turns every outcome, errors included, into a :class:`ToolOutput` whose
text goes back to the policy. Nothing a policy sends can make :meth:`Toolbox.execute` raise.

Tools are pure functions of their arguments (and, for the store tools, of a per-episode
in-memory :class:`~grpo_envs.tools.kv_store.KeyValueStore`): none touches the network or the
file system, by construction rather than by sandboxing.
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from grpo_envs.lazy_singleton import LazySingleton
from grpo_envs.verify.tool_call_parse import FunctionCall
from grpo_envs.verify.tool_schema import resolve_function, validate_arguments
from grpo_envs.verify.worker import DEFAULT_MEMORY_LIMIT, TimeoutWorker, WorkerError, WorkerTimeout

#: Longest tool output returned to the policy, in characters; longer outputs are cut.
MAX_OUTPUT_CHARS = 2_000
#: Wall-clock limit of an isolated tool call, in seconds. The calculator's own bounds keep
#: legitimate calls under a millisecond; the limit only catches what the bounds missed.
DEFAULT_TOOL_TIMEOUT = 2.0

# Reasons a tool call can fail (they appear in the multi-turn env's ``info``).
TOOL_ERROR = "tool_error"  #: the tool refused its input (division by zero, unknown unit, ...)
TOOL_TIMEOUT = "timeout"  #: an isolated tool overran its wall-clock limit and was killed


class ToolError(Exception):
    """A tool refuses its input; the message is shown to the policy, so it says what to fix."""


@dataclass(frozen=True)
class Tool:
    """A callable tool and its spec.

    :param name: the function name the policy calls.
    :param description: one sentence for the policy.
    :param parameters: JSON schema (``"type": "object"``) of the keyword arguments.
    :param function: the implementation; called with the arguments as keywords (plus
        ``store=`` when ``uses_store``). It raises :class:`ToolError` for bad input.
    :param uses_store: pass the episode's key-value store as ``store=``.
    :param isolated: run in the shared :class:`TimeoutWorker` under a wall-clock limit (for
        tools whose running time depends on untrusted input). Isolated tools must be
        module-level functions and cannot use the store.
    """

    name: str
    description: str
    parameters: Mapping[str, Any]
    function: Callable[..., Any]
    uses_store: bool = False
    isolated: bool = False

    def __post_init__(self) -> None:
        if self.isolated and self.uses_store:
            raise ValueError(f"tool {self.name!r}: an isolated tool runs in another process and cannot use the store")

    @property
    def spec(self) -> dict[str, Any]:
        """The JSON-schema function spec shown to the policy."""
        return {"name": self.name, "description": self.description, "parameters": dict(self.parameters)}


@dataclass(frozen=True)
class ToolOutput:
    """The outcome of one call: ``content`` is the text the policy sees.

    :param name: the called function's name.
    :param ok: whether the tool ran and returned a value.
    :param content: the value rendered as text, or ``"Error: ..."``.
    :param reason: ``None`` when ok, else ``unknown_function | invalid_arguments | tool_error | timeout | error``.
    """

    name: str
    ok: bool
    content: str
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "content": self.content, "reason": self.reason}


def format_value(value: Any) -> str:
    """Render a tool's return value as the text the policy reads (floats to 12 significant
    digits, so that ``0.1 + 0.2`` reads ``0.3``; containers as JSON)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
            return str(int(value)) if abs(value) >= 1 or value == 0 else format(value, ".12g")
        return format(value, ".12g")
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def run_isolated(module_name: str, function_name: str, arguments: dict[str, Any]) -> tuple[bool, Any]:
    """Worker-side trampoline: call ``module.function(**arguments)``; a :class:`ToolError` comes
    back as ``(False, message)`` so that the parent can show it to the policy."""
    function = getattr(importlib.import_module(module_name), function_name)
    try:
        return True, function(**arguments)
    except ToolError as exc:
        return False, str(exc)


# The verifier worker's address-space cap: tools need little, but the child imports numpy
# (via gymnasium), whose BLAS reserves address space per CPU core.
_shared_worker = LazySingleton(lambda: TimeoutWorker(preload=["grpo_envs.tools"], memory_limit=DEFAULT_MEMORY_LIMIT))


def shared_tool_worker() -> TimeoutWorker:
    """The process-wide worker that runs isolated tools (started on first use, closed at exit)."""
    return _shared_worker.get()


class Toolbox:
    """A set of tools that executes function calls and never raises for a policy's input.

    :param tools: the tools; names must be unique.
    :param timeout: wall-clock limit of an isolated call, in seconds.
    :param isolate: run ``isolated`` tools in the worker (True) or in this process (False: faster,
        for trusted callers and tests; the tools' own bounds still apply).
    :param max_output_chars: longer outputs are cut and marked ``[truncated]``.
    :param worker: the worker for isolated tools; defaults to :func:`shared_tool_worker`.

    Example::

        >>> from grpo_envs.tools import default_toolbox
        >>> from grpo_envs.verify.tool_call import FunctionCall
        >>> box = default_toolbox(isolate=False)
        >>> box.execute(FunctionCall("calculate", {"expression": "2 ** 10 + 1"})).content
        '1025'
        >>> box.execute(FunctionCall("calculate", {"expression": "10 ** 10 ** 10"})).reason
        'tool_error'
    """

    def __init__(
        self,
        tools: Iterable[Tool],
        *,
        timeout: float = DEFAULT_TOOL_TIMEOUT,
        isolate: bool = True,
        max_output_chars: int = MAX_OUTPUT_CHARS,
        worker: TimeoutWorker | None = None,
    ) -> None:
        self.tools: dict[str, Tool] = {}
        for tool in tools:
            if tool.name in self.tools:
                raise ValueError(f"two tools are named {tool.name!r}; tool names must be unique")
            self.tools[tool.name] = tool
        self.timeout = float(timeout)
        self.isolate = isolate
        self.max_output_chars = max_output_chars
        self._worker = worker

    def __contains__(self, name: object) -> bool:
        return name in self.tools

    @property
    def names(self) -> list[str]:
        return list(self.tools)

    def specs(self, names: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """The specs of the named tools (all tools when ``names`` is None), in that order."""
        unknown = [n for n in names or [] if n not in self.tools]
        if unknown:
            raise KeyError(f"no tools named {unknown}; this toolbox has {self.names}")
        return [self.tools[n].spec for n in (names if names is not None else self.names)]

    def subset(self, names: Sequence[str]) -> Toolbox:
        """A toolbox with only the named tools (same settings and worker)."""
        self.specs(names)  # raises on unknown names
        return Toolbox(
            [self.tools[n] for n in names],
            timeout=self.timeout,
            isolate=self.isolate,
            max_output_chars=self.max_output_chars,
            worker=self._worker,
        )

    def execute(self, call: FunctionCall, store: Any = None) -> ToolOutput:
        """Run one call and return its output; errors become ``Error: ...`` outputs."""
        name = resolve_function(call.name, self.tools)
        if name is None:
            return ToolOutput(
                call.name,
                False,
                f"Error: unknown function {call.name!r}; available tools: {self.names}",
                "unknown_function",
            )
        tool = self.tools[name]
        _, problem = validate_arguments(tool.spec, call.arguments)
        if problem is not None:
            return ToolOutput(name, False, f"Error: invalid arguments for {name}: {problem}", "invalid_arguments")
        try:
            if tool.isolated and self.isolate:
                worker = self._worker or shared_tool_worker()
                ok, value = worker.call(
                    run_isolated,
                    tool.function.__module__,
                    tool.function.__name__,
                    dict(call.arguments),
                    timeout=self.timeout,
                )
                if not ok:
                    raise ToolError(value)
            elif tool.uses_store:
                value = tool.function(store=store, **call.arguments)
            else:
                value = tool.function(**call.arguments)
        except ToolError as exc:
            return ToolOutput(name, False, f"Error: {exc}", TOOL_ERROR)
        except WorkerTimeout:
            return ToolOutput(
                name, False, f"Error: {name} took longer than {self.timeout:g} s and was stopped", TOOL_TIMEOUT
            )
        except MemoryError:
            return ToolOutput(name, False, f"Error: {name} ran out of memory", TOOL_ERROR)
        except WorkerError as exc:
            last_line = str(exc).strip().splitlines()[-1:] or ["worker failed"]
            return ToolOutput(name, False, f"Error: {name} failed: {last_line[0]}", "error")
        except Exception as exc:  # noqa: BLE001 - a tool bug must reach the policy as text, not kill the run
            return ToolOutput(name, False, f"Error: {name} failed: {type(exc).__name__}: {exc}", "error")
        text = format_value(value)
        if len(text) > self.max_output_chars:
            text = text[: self.max_output_chars] + " ... [truncated]"
        return ToolOutput(name, True, text)
