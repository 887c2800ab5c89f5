"""grpo/ToolCall-v0: emit the right JSON function call(s) for a request and a set of tool specs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grpo_envs.core import TextBanditEnv
from grpo_envs.tasks.base import Task, TaskSource
from grpo_envs.tasks.bfcl import load_bfcl
from grpo_envs.tasks.tool_call import ToolCallTasks
from grpo_envs.tasks.tool_format import (
    TOOL_CALL_CATEGORIES,
    TOOL_PROMPT_MODES,
    as_tool_prompt,
    chat_template_tools,
    native_tool_call_protocol,
)
from grpo_envs.verify.result import VerifyResult
from grpo_envs.verify.tool_call import ABSTAIN_MODES, REWARD_MODES, verify_tool_calls


class ToolCallEnv(TextBanditEnv):
    """
    ## Description

    A one-step function-calling bandit. The prompt shows tools as JSON-schema function specs,
    the protocol, and a user request; the policy answers with the call(s) that serve the
    request. Matching follows the Berkeley Function Calling Leaderboard (BFCL): each parameter
    of the reference lists its acceptable values, ``""`` among them means the parameter may be
    omitted, parallel calls match in any order, numbers compare by value (``5 == 5.0``) and
    strings after BFCL's normalisation (lower case, without spaces and ``,./-_*^``; tasks may
    ask for stricter matching of a parameter, e.g. arithmetic expressions).

    Task categories (as in BFCL): ``simple`` (one tool shown), ``multiple`` (choose among
    several), ``parallel`` (several calls at once) and ``irrelevance`` (no tool applies: the
    right action is to call nothing). Tasks come from a seeded generator over the project's own
    tools (:class:`~grpo_envs.tasks.tool_call.ToolCallTasks`), from BFCL files
    (``bfcl="path/to/BFCL_v4_simple_python.json"``) or from any list of tasks.

    ## Action Space

    ``UnicodeText(0, max_completion_length)``: the completion. Calls are read as a JSON object
    ``{"name": ..., "arguments": {...}}`` or a list of them, inside ``<tool_call>...</tool_call>``
    tags (one per call), in a fenced code block, or bare; and in the native formats of Llama 3.x
    (``{"name": ..., "parameters": {...}}``, optionally after ``<|python_tag|>``) and Mistral
    (``[TOOL_CALLS][{...}]`` or ``[TOOL_CALLS]name[ARGS]{...}``). ``[]`` is an explicit "no
    call". ``info["call_format"]`` says which format was read.

    ## Observation Space

    ``UnicodeText(0, max_prompt_length)``: the prompt (tool specs, protocol, request). With
    ``tool_prompt="template"`` the prompt is a
    :class:`~grpo_envs.tasks.tool_format.ToolPrompt`: the same text, carrying ``.messages``
    (the protocol as a system message, then the request) and ``.tools`` (the specs as chat
    templates take them), which ``reset``'s ``info["tools"]`` repeats.

    ## Rewards

    1.0 when the calls match the reference, else 0.0; with ``reward_mode="fraction"``, the best
    one-to-one assignment's share of right arguments over ``max(#calls, #reference calls)``
    (schema-invalid calls and unknown functions still score 0). ``info["reason"]`` is one of
    ``correct, parse_failed, no_call, unexpected_call, unknown_function, invalid_arguments,
    wrong_count, wrong_function, wrong_value, missing_argument, unexpected_argument, error``,
    and ``info["mismatch"]`` names the call (``call_index``) and argument that were wrong.

    ## Episode End

    Every episode ends after one step (``terminated=True``).

    ## Arguments

    - ``tasks`` (list of Task, optional): use these instead of the generator.
    - ``bfcl`` (path or BFCL category name, optional): load BFCL tasks instead (see
      :func:`~grpo_envs.tasks.bfcl.load_bfcl`); ``bfcl_answers`` overrides the answer file.
    - ``level`` (int or list of ints, default 1): generator difficulty, 1 to 3.
    - ``categories`` (list of str, default all four): generator categories.
    - ``num_tasks`` (int, default 1000) and ``seed`` (int, default 0): the generator's size and seed.
    - ``reward_mode`` (``"binary"`` or ``"fraction"``, default ``"binary"``).
    - ``abstain`` (``"empty_list"`` or ``"plain_text"``, default ``"empty_list"``): how an
      irrelevance task is answered. ``empty_list`` needs an explicit ``[]``, so that random text
      scores 0; ``plain_text`` is BFCL's rule (any reply without a call is right).
    - ``tool_prompt`` (``"text"`` or ``"template"``, default ``"text"``): ``"template"`` also
      hands the specs over in structured form, for a policy whose chat template renders
      tools (see the Observation Space).
    - ``render_mode`` (None or ``"ansi"``), ``max_prompt_length``, ``max_completion_length``.

    ## Version History

    - v0: initial version.

    Example::

        >>> import gymnasium as gym, grpo_envs
        >>> env = gym.make("grpo/ToolCall-v0", categories=["simple"])
        >>> prompt, info = env.reset(seed=0)
        >>> call = env.unwrapped.task.reference["ground_truth"][0]     # the reference call
        >>> (name, params), = call.items()
        >>> arguments = {k: v[0] for k, v in params.items() if v[0] != ""}
        >>> import json
        >>> action = "<tool_call>" + json.dumps({"name": name, "arguments": arguments}) + "</tool_call>"
        >>> env.step(action)[1]
        1.0
    """

    def __init__(
        self,
        tasks: TaskSource | Sequence[Task] | None = None,
        *,
        bfcl: str | Path | None = None,
        bfcl_answers: str | Path | None = None,
        level: int | Sequence[int] = 1,
        categories: Sequence[str] = TOOL_CALL_CATEGORIES,
        num_tasks: int = 1000,
        seed: int = 0,
        reward_mode: str = "binary",
        abstain: str = "empty_list",
        tool_prompt: str = "text",
        render_mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        if reward_mode not in REWARD_MODES:
            raise ValueError(f"reward_mode={reward_mode!r} is not supported; use one of {REWARD_MODES}")
        if abstain not in ABSTAIN_MODES:
            raise ValueError(f"abstain={abstain!r} is not supported; use one of {ABSTAIN_MODES}")
        if tool_prompt not in TOOL_PROMPT_MODES:
            raise ValueError(f"tool_prompt={tool_prompt!r} is not supported; use one of {TOOL_PROMPT_MODES}")
        if tasks is not None and bfcl is not None:
            raise ValueError("pass either tasks or bfcl, not both")
        if tasks is None:
            if bfcl is not None:
                tasks = load_bfcl(bfcl, bfcl_answers, abstain=abstain)
            else:
                tasks = ToolCallTasks(num_tasks, seed=seed, level=level, categories=categories, abstain=abstain)
        super().__init__(tasks, render_mode=render_mode, **kwargs)
        self.reward_mode, self.abstain, self.tool_prompt = reward_mode, abstain, tool_prompt

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        prompt, info = super().reset(seed=seed, options=options)
        if self.tool_prompt == "template":
            assert self._task is not None
            specs = self._task.reference["tools"]
            prompt = as_tool_prompt(prompt, specs, native_tool_call_protocol(self.abstain))
            info = {**info, "tools": list(prompt.tools)}
        return prompt, info

    def tools_for(self, task: Task) -> list[dict[str, Any]]:
        """The specs shown with ``task``, as chat templates take them (``apply_chat_template(..., tools=)``)."""
        return chat_template_tools(task.reference["tools"])

    def verify(self, task: Task, completion: str) -> VerifyResult:
        reference = task.reference
        return verify_tool_calls(
            completion,
            reference["ground_truth"],
            reference["tools"],
            reward_mode=self.reward_mode,
            abstain=self.abstain,
            string_match=reference.get("string_match"),
            max_chars=self.action_space.max_length,
        )

    def describe_reference(self, task: Task) -> Any:
        """The reference calls only (the tool specs are in the prompt)."""
        return task.reference["ground_truth"]
