"""grpo/ToolUse-v0: call real tools over several turns, then answer; the answer is verified."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, SupportsFloat

from grpo_envs.core import TextBanditEnv
from grpo_envs.tasks.base import Task, TaskSource
from grpo_envs.tasks.tool_format import (
    NATIVE_TOOL_USE_PROTOCOL,
    TOOL_PROMPT_MODES,
    as_tool_prompt,
    chat_template_tools,
)
from grpo_envs.tasks.tool_use import ToolUseTasks
from grpo_envs.tools import KeyValueStore, Toolbox, ToolOutput, default_toolbox
from grpo_envs.tools.base import DEFAULT_TOOL_TIMEOUT
from grpo_envs.verify.result import PARSE_FAILED, WRONG, VerifyResult
from grpo_envs.verify.tool_call_parse import MISTRAL_TOOL_CALLS, PYTHON_TAG, ToolCallParseError, parse_tool_calls

#: Reasons of intermediate and truncated steps.
TOOL_CALL = "tool_call"  #: the turn's calls ran; the episode goes on
MAX_TURNS = "max_turns"  #: the policy was still calling tools when the turn limit came
#: Most calls executed in one turn; the rest are answered with an error.
MAX_CALLS_PER_TURN = 8
#: Longest number token read from an answer: a policy cannot make sympy chew a huge literal.
MAX_NUMBER_CHARS = 64

_CALL_MARKER_RE = re.compile(
    "|".join(map(re.escape, ("<tool_call>", "```", MISTRAL_TOOL_CALLS, PYTHON_TAG))), re.IGNORECASE
)
_ANSWER_TAG_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_ANSWER_MARK_RE = re.compile(r"\banswer\b\s*(?:is\b)?\s*[:=]?[ \t]*", re.IGNORECASE)
_NUMBER_RE = re.compile(
    r"^[$€£]?\s*([-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?(?:\s*/\s*\d+)?)(.*)$", re.DOTALL
)
#: What may follow a number in an answer: a unit or currency word, a percent sign.
_UNIT_TAIL_RE = re.compile(r"^[\sA-Za-z°%$€£/.]*$")


def extract_final_answer(text: str) -> str:
    """The answer part of a final reply: inside ``<answer>`` tags, else after the last
    "Answer:" / "answer is" (to the end of that line), else the whole reply; surrounding
    quotes, backticks, bold markers and a final period are dropped."""
    tagged = _ANSWER_TAG_RE.findall(text)
    if tagged:
        answer = tagged[-1]
    else:
        marks = list(_ANSWER_MARK_RE.finditer(text))
        answer = text[marks[-1].end() :].split("\n", 1)[0] if marks else text
    answer = answer.strip()
    for _ in range(3):  # peel nested decorations such as **"x"**
        answer = answer.strip().removesuffix(".").strip()
        for mark in ("**", "`", '"', "'"):
            if len(answer) >= 2 * len(mark) and answer.startswith(mark) and answer.endswith(mark):
                answer = answer[len(mark) : -len(mark)]
    return answer.strip()


def verify_final_answer(completion: str, reference: dict[str, Any]) -> VerifyResult:
    """Check a final reply against ``reference`` (``answer``, ``kind``, ``tolerance``,
    ``case_sensitive``). Numbers are compared exactly with sympy rationals (within the
    absolute ``tolerance``); a number may be followed by a unit word. Strings compare exactly
    (case-insensitively when ``case_sensitive`` is false). Never raises for any completion."""
    answer = extract_final_answer(completion)
    expected = str(reference["answer"])
    if reference.get("kind", "string") == "number":
        match = _NUMBER_RE.match(answer)
        if match is None or not _UNIT_TAIL_RE.match(match.group(2)) or len(match.group(1)) > MAX_NUMBER_CHARS:
            return VerifyResult.fail(PARSE_FAILED, parsed=answer, message="the answer does not start with a number")
        import sympy  # imported here: only number answers need it

        token = match.group(1).replace(",", "").replace(" ", "")
        try:
            value, target = sympy.Rational(token), sympy.Rational(expected)
        except (TypeError, ValueError, ZeroDivisionError):
            return VerifyResult.fail(PARSE_FAILED, parsed=answer, message=f"cannot read {token!r} as a number")
        tolerance = sympy.Rational(str(reference.get("tolerance", 0) or 0))
        ok = abs(value - target) <= tolerance
        parsed: Any = token
    else:
        ok = answer == expected if reference.get("case_sensitive", True) else answer.casefold() == expected.casefold()
        parsed = answer
    if ok:
        return VerifyResult.success(parsed=parsed)
    return VerifyResult(reward=0.0, correct=False, reason=WRONG, parsed=parsed)


class ToolUseEnv(TextBanditEnv):
    """
    ## Description

    A multi-turn tool-use environment. The prompt shows a request, the available tools as
    JSON-schema function specs, and the protocol. Each step the policy either calls tools
    (JSON ``{"name": ..., "arguments": {...}}`` inside ``<tool_call>`` tags, as in
    ``grpo/ToolCall-v0``) or answers in plain text. Calls run against real Python tools
    (:mod:`grpo_envs.tools`: calculator, unit conversion, date arithmetic, a per-episode
    key-value store, string utilities) and their outputs come back as the next observation.
    A reply without a tool call is the final answer; it is verified (sympy rationals for
    numbers, exact match for strings) and ends the episode.

    Tool errors (unknown function, schema-invalid arguments, a refused input, a timeout, an
    unreadable call inside ``<tool_call>`` tags or a code fence) come back to the policy as
    ``Error: ...`` observations; nothing a policy writes makes ``step`` raise. Untagged text
    that is not a readable call is the final answer. The calculator runs in a killable worker process under
    ``tool_timeout``.

    ## Action Space

    ``UnicodeText(0, max_completion_length)``: the policy's reply for this turn. Calls are read
    in every format ``grpo/ToolCall-v0`` reads (``<tool_call>`` tags, Llama 3.x JSON and
    ``<|python_tag|>``, Mistral ``[TOOL_CALLS]``, code fences, bare JSON).

    ## Observation Space

    ``UnicodeText(0, max_prompt_length)``. After ``reset``: the prompt. After a tool-calling
    step: **only the environment's new text**, i.e. the tool outputs, one
    ``<tool_response name="...">...</tool_response>`` block per call; the conversation so far
    is in ``info["messages"]`` (``role`` = ``user`` | ``assistant`` | ``tool``), so an agent can
    tell the environment's text from its own. After the final step: the prompt again.

    With ``tool_prompt="template"`` the first observation is a
    :class:`~grpo_envs.tasks.tool_format.ToolPrompt` (the same text, carrying ``.messages`` and
    ``.tools`` for a chat template; ``info["tools"]`` repeats the specs), ``info["messages"]``
    starts with its system and user messages, and a tool turn's observation is the bare output
    (one ``name: output`` line per call when there are several), because the chat template
    marks a ``tool`` message itself.

    ## Rewards

    0 on every tool-calling step; on the final step 1.0 if the answer is right, else 0.
    ``info`` always has ``correct``, ``reason``, ``turn``, ``tool_calls``, ``tool_results``,
    ``tool_output`` (the observation's text, ``""`` on the final step) and ``messages``; a
    tool-calling step also has ``call_format`` (the syntax the calls were read from, see
    :data:`~grpo_envs.verify.tool_call_parse.CALL_FORMATS`).
    Reasons: intermediate steps ``tool_call`` or the first failing call's reason
    (``parse_failed | unknown_function | invalid_arguments | tool_error | timeout | error``);
    final steps ``correct | wrong | parse_failed | error``; truncated steps ``max_turns``.

    ## Episode End

    ``terminated=True`` when the policy answers (a reply without a tool call).
    ``truncated=True`` when ``max_turns`` replies have been made without an answer.

    ## Arguments

    - ``tasks`` (list of Task, optional): use these instead of the generator (see
      :class:`~grpo_envs.tasks.tool_use.ToolUseTasks` for the reference fields).
    - ``level`` (int or list of ints, default 1): 1 to 3 chained calls needed.
    - ``num_tasks`` (int, default 1000) and ``seed`` (int, default 0): the generator's size and seed.
    - ``max_turns`` (int, default 8): replies allowed per episode, the answer included.
    - ``tool_timeout`` (float, default 2.0): wall-clock limit of an isolated tool call.
    - ``isolate_tools`` (bool, default True): run the calculator in the worker process.
    - ``toolbox`` (Toolbox, optional): replaces the project's tools.
    - ``tool_prompt`` (``"text"`` or ``"template"``, default ``"text"``): see the Observation Space.
    - ``render_mode`` (None or ``"ansi"``), ``max_prompt_length``, ``max_completion_length``.

    ## Version History

    - v0: initial version.

    Example::

        >>> import gymnasium as gym, grpo_envs
        >>> env = gym.make("grpo/ToolUse-v0", isolate_tools=False)
        >>> prompt, info = env.reset(seed=0, options={"task_id": 0})
        >>> prompt.splitlines()[-1]
        'User: What is 16 - 33 - 46?'
        >>> obs, reward, terminated, truncated, info = env.step(
        ...     '<tool_call>{"name": "calculate", "arguments": {"expression": "16 - 33 - 46"}}</tool_call>')
        >>> obs, reward, terminated
        ('<tool_response name="calculate">\\n-63\\n</tool_response>', 0.0, False)
        >>> env.step("Answer: -63")[1:3]
        (1.0, True)
    """

    def __init__(
        self,
        tasks: TaskSource | Sequence[Task] | None = None,
        *,
        level: int | Sequence[int] = 1,
        num_tasks: int = 1000,
        seed: int = 0,
        max_turns: int = 8,
        tool_timeout: float = DEFAULT_TOOL_TIMEOUT,
        isolate_tools: bool = True,
        toolbox: Toolbox | None = None,
        tool_prompt: str = "text",
        render_mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        if max_turns < 1:
            raise ValueError(f"max_turns must be at least 1 (the answer is a turn), got {max_turns}")
        if tool_prompt not in TOOL_PROMPT_MODES:
            raise ValueError(f"tool_prompt={tool_prompt!r} is not supported; use one of {TOOL_PROMPT_MODES}")
        if tasks is None:
            tasks = ToolUseTasks(num_tasks, seed=seed, level=level)
        super().__init__(tasks, render_mode=render_mode, **kwargs)
        self.max_turns, self.tool_prompt = max_turns, tool_prompt
        self.toolbox = toolbox if toolbox is not None else default_toolbox(timeout=tool_timeout, isolate=isolate_tools)
        self._episode_tools: Toolbox | None = None
        self._store: KeyValueStore | None = None
        self._turn = 0
        self._messages: list[dict[str, str]] = []
        self._outcome: dict[str, Any] | None = None

    # -- Gymnasium API ---------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        prompt, info = super().reset(seed=seed, options=options)
        assert self._task is not None
        reference = self._task.reference
        names = reference.get("tools")
        self._episode_tools = self.toolbox.subset(names) if names is not None else self.toolbox
        self._store = KeyValueStore(reference.get("store") or {})
        self._turn, self._outcome = 0, None
        self._messages = [{"role": "user", "content": prompt}]
        info = {**info, "turn": 0, "max_turns": self.max_turns}
        if self.tool_prompt == "template":
            prompt = as_tool_prompt(prompt, self._episode_tools.specs(), NATIVE_TOOL_USE_PROTOCOL)
            self._messages = [dict(m) for m in prompt.messages]
            info["tools"] = list(prompt.tools)
        return prompt, info

    def step(self, action: str) -> tuple[str, SupportsFloat, bool, bool, dict[str, Any]]:
        task = self._check_action(action)
        self._turn += 1
        self._messages.append({"role": "assistant", "content": action})
        calls, parse_error, call_format = [], None, None
        if len(action) > self.action_space.max_length:  # refused unread, as a final answer
            return self._finish(task, self.verify_safely(task, action), terminated=True)
        try:
            parsed = parse_tool_calls(action, max_chars=self.action_space.max_length)
            calls, call_format = parsed.calls, parsed.format
        except ToolCallParseError as exc:
            # The protocol writes calls in tags: only a broken *tagged* (or fenced) call is a
            # failed call; untagged text that merely starts with "[" or "{" is an answer.
            if _CALL_MARKER_RE.search(action):
                parse_error = str(exc)
        if not calls and parse_error is None:
            return self._finish(task, self.verify_safely(task, action), terminated=True)

        outputs = self._run_calls(calls, parse_error)
        if self.tool_prompt == "template":  # the chat template marks the tool message itself
            lines = [o.content if len(outputs) == 1 else f"{o.name or 'error'}: {o.content}" for o in outputs]
            observation = "\n".join(lines)
        else:
            observation = "\n".join(f'<tool_response name="{o.name}">\n{o.content}\n</tool_response>' for o in outputs)
        observation = observation[: self.observation_space.max_length]
        self._messages.append({"role": "tool", "content": observation})
        failed = next((o.reason for o in outputs if not o.ok), None)
        truncated = self._turn >= self.max_turns
        reason = MAX_TURNS if truncated else (failed or TOOL_CALL)
        info = {**self._turn_info(task, reason, calls, outputs, observation), "call_format": call_format}
        self._outcome = {"reward": 0.0, "info": info}
        if truncated:
            self._task = None
        return observation, 0.0, False, truncated, info

    def verify(self, task: Task, completion: str) -> VerifyResult:
        """Check a final answer (see :func:`verify_final_answer`)."""
        return verify_final_answer(completion, task.reference)

    def tools_for(self, task: Task) -> list[dict[str, Any]]:
        """The specs shown with ``task``, as chat templates take them (``apply_chat_template(..., tools=)``)."""
        names = task.reference.get("tools")
        return chat_template_tools(self.toolbox.specs(names))

    def describe_reference(self, task: Task) -> Any:
        """The expected answer only (the reference solution path stays in ``task.reference``)."""
        return task.reference["answer"]

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        if not self._messages:
            return ""
        task_name = self.tasks[self._task_index].id if self._task_index is not None else ""
        lines = [f"[task {self._task_index} {task_name}]"]
        lines += [f"{m['role']}: {m['content']}" for m in self._messages]
        if self._outcome is not None and self._task is None:
            info = self._outcome["info"]
            lines.append(
                f"reward: {self._outcome['reward']:g} ({info['reason']}; parsed={info['parsed']!r}, "
                f"reference={info['reference']!r})"
            )
        return "\n".join(lines) + "\n"

    # -- helpers ---------------------------------------------------------------------------

    def _run_calls(self, calls: list[Any], parse_error: str | None) -> list[ToolOutput]:
        if parse_error is not None:
            return [
                ToolOutput(
                    "",
                    False,
                    f"Error: could not read your tool call ({parse_error}); write "
                    '{"name": ..., "arguments": {...}} inside <tool_call></tool_call> tags',
                    PARSE_FAILED,
                )
            ]
        assert self._episode_tools is not None
        outputs = [self._episode_tools.execute(call, self._store) for call in calls[:MAX_CALLS_PER_TURN]]
        outputs += [
            ToolOutput(
                call.name, False, f"Error: not run; at most {MAX_CALLS_PER_TURN} calls per turn", "too_many_calls"
            )
            for call in calls[MAX_CALLS_PER_TURN:]
        ]
        return outputs

    def _turn_info(
        self, task: Task, reason: str, calls: list[Any], outputs: list[ToolOutput], tool_output: str
    ) -> dict[str, Any]:
        return {
            "task_id": self._task_index,
            "task_name": task.id,
            "turn": self._turn,
            "correct": False,
            "reason": reason,
            "parsed": None,
            "reference": self.describe_reference(task),
            "tool_calls": [c.to_dict() for c in calls],
            "tool_results": [o.to_dict() for o in outputs],
            "tool_output": tool_output,
            "messages": [dict(m) for m in self._messages],
        }

    def _finish(
        self, task: Task, result: VerifyResult, *, terminated: bool
    ) -> tuple[str, SupportsFloat, bool, bool, dict[str, Any]]:
        info = {
            **self._step_info(task, result),
            "turn": self._turn,
            "tool_calls": [],
            "tool_results": [],
            "tool_output": "",
            "messages": [dict(m) for m in self._messages],
        }
        self._outcome = {"reward": float(result.reward), "info": info}
        self._task = None
        return task.prompt, float(result.reward), terminated, False, info


__all__ = ["ToolUseEnv", "extract_final_answer", "verify_final_answer"]
