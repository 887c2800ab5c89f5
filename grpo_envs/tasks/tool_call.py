"""ToolCall-v0's tasks: procedural single-step function-calling tasks over the project's own tools.

:class:`ToolCallTasks` covers the four BFCL categories ``simple`` (one tool shown),
``multiple`` (choose among several), ``parallel`` (several calls) and ``irrelevance`` (no tool
applies); references use BFCL's possible-answer format. Task ``k`` depends only on
``(seed, level, k)``.

The multi-turn tasks (:class:`~grpo_envs.tasks.tool_use.ToolUseTasks`), the BFCL loader
(:mod:`grpo_envs.tasks.bfcl`) and the prompt format (:mod:`grpo_envs.tasks.tool_format`) have
modules of their own; their names are re-exported here, where earlier versions defined them.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from grpo_envs.tasks.base import GeneratedTasks, Task
from grpo_envs.tasks.bfcl import bfcl_category, bfcl_data_dir, load_bfcl
from grpo_envs.tasks.tool_format import (
    LEVELS,
    TOOL_CALL_CATEGORIES,
    TOOL_USE_PROTOCOL,
    format_tool_prompt,
    format_tools,
    tool_call_protocol,
)
from grpo_envs.tasks.tool_use import ToolUseTasks
from grpo_envs.tasks.tool_vocabulary import (
    CONVERSIONS,
    IRRELEVANT,
    PEOPLE,
    UNIT_WORDS,
    date,
    expression,
    phrase,
    prose_date,
)
from grpo_envs.tools import DEFAULT_TOOLS, format_value, strings, units

_SPECS: dict[str, dict[str, Any]] = {tool.name: tool.spec for tool in DEFAULT_TOOLS}


@dataclass
class _Request:
    """One request and the reference call that serves it."""

    text: str
    answer: dict[str, dict[str, list[Any]]]
    string_match: dict[str, str] = field(default_factory=dict)


def _req_calculate(rng: random.Random, level: int) -> _Request:
    expr = expression(rng, level)
    text = rng.choice([f"Compute {expr}.", f"What is {expr}?", f"Use the calculator to evaluate {expr}."])
    return _Request(text, {"calculate": {"expression": [expr]}}, {"expression": "ignore_space"})


def _req_convert(rng: random.Random, level: int) -> _Request:
    source, target = rng.choice(CONVERSIONS)
    value: float = rng.randint(1, 500) if level == 1 else round(rng.uniform(0.5, 500), 1)
    text = f"Convert {format_value(value)} {UNIT_WORDS[source]} to {UNIT_WORDS[target]}."
    return _Request(
        text,
        {
            "convert_units": {
                "value": [value],
                "from_unit": units.unit_names(source),
                "to_unit": units.unit_names(target),
            }
        },
    )


def _req_date_add(rng: random.Random, level: int) -> _Request:
    day, n = date(rng), rng.randint(1, 400)
    shown = day.isoformat() if level < 3 else prose_date(day)
    if level == 1:
        return _Request(f"What date is {n} days after {shown}?", {"date_add": {"date": [day.isoformat()], "days": [n]}})
    weeks = rng.randint(1, 30)
    text, days = rng.choice(
        [(f"What date is {weeks} weeks after {shown}?", 7 * weeks), (f"What date was it {n} days before {shown}?", -n)]
    )
    return _Request(text, {"date_add": {"date": [day.isoformat()], "days": [days]}})


def _req_date_diff(rng: random.Random, level: int) -> _Request:
    first, second = sorted([date(rng), date(rng)])
    a, b = (first.isoformat(), second.isoformat()) if level < 3 else (prose_date(first), prose_date(second))
    return _Request(
        f"How many days are there from {a} to {b}?",
        {"date_diff": {"start": [first.isoformat()], "end": [second.isoformat()]}},
    )


def _req_day_of_week(rng: random.Random, level: int) -> _Request:
    day = date(rng)
    shown = day.isoformat() if level < 3 else prose_date(day)
    return _Request(f"Which day of the week is {shown}?", {"day_of_week": {"date": [day.isoformat()]}})


def _key(rng: random.Random) -> str:
    return f"{rng.choice(('user', 'config', 'order', 'note'))}:{rng.choice(PEOPLE)}:{rng.randint(1, 99)}"


def _req_kv_get(rng: random.Random, level: int) -> _Request:
    key = _key(rng)
    return _Request(f"Look up the value stored under the key '{key}'.", {"kv_get": {"key": [key]}}, {"key": "exact"})


def _req_kv_set(rng: random.Random, level: int) -> _Request:
    key = _key(rng)
    if level > 1 and rng.random() < 0.5:
        value: Any = rng.randint(1, 1000)
        return _Request(
            f"Set the key '{key}' to the number {value}.",
            {"kv_set": {"key": [key], "value": [value]}},
            {"key": "exact"},
        )
    value = phrase(rng, 2)
    return _Request(
        f"Store the text '{value}' under the key '{key}'.",
        {"kv_set": {"key": [key], "value": [value]}},
        {"key": "exact", "value": "exact"},
    )


def _req_kv_delete(rng: random.Random, level: int) -> _Request:
    key = _key(rng)
    return _Request(f"Delete the key '{key}' from the store.", {"kv_delete": {"key": [key]}}, {"key": "exact"})


def _req_kv_list(rng: random.Random, level: int) -> _Request:
    if level == 1:
        return _Request("List all the keys in the key-value store.", {"kv_list": {"prefix": [""]}})
    prefix = f"{rng.choice(('user', 'config', 'order', 'note'))}:"
    return _Request(
        f"List the keys in the store that start with '{prefix}'.",
        {"kv_list": {"prefix": [prefix]}},
        {"prefix": "exact"},
    )


def _req_text_length(rng: random.Random, level: int) -> _Request:
    text = phrase(rng, rng.randint(1, 3))
    return _Request(
        f"How many characters are in the text '{text}'?", {"text_length": {"text": [text]}}, {"text": "exact"}
    )


def _req_reverse(rng: random.Random, level: int) -> _Request:
    text = phrase(rng, rng.randint(1, 2))
    return _Request(f"Reverse the text '{text}'.", {"reverse_text": {"text": [text]}}, {"text": "exact"})


def _req_change_case(rng: random.Random, level: int) -> _Request:
    text, case = phrase(rng, 2), rng.choice(strings.CASES)
    wording = {"upper": "upper case", "lower": "lower case", "title": "title case"}[case]
    if case == "lower":
        text = text.upper()
    return _Request(
        f"Convert '{text}' to {wording}.", {"change_case": {"text": [text], "case": [case]}}, {"text": "exact"}
    )


def _req_count(rng: random.Random, level: int) -> _Request:
    text, sub = phrase(rng, 4), rng.choice(("an", "er", "o", "e", "on", "a"))
    if level > 1 and rng.random() < 0.5:
        text = text.title()
        return _Request(
            f"Ignoring case, how many times does '{sub}' occur in '{text}'?",
            {"count_occurrences": {"text": [text], "substring": [sub], "case_sensitive": [False]}},
            {"text": "exact", "substring": "exact"},
        )
    return _Request(
        f"How many times does '{sub}' occur in '{text}'?",
        {"count_occurrences": {"text": [text], "substring": [sub], "case_sensitive": ["", True]}},
        {"text": "exact", "substring": "exact"},
    )


_REQUEST_MAKERS: dict[str, Callable[[random.Random, int], _Request]] = {
    "calculate": _req_calculate,
    "convert_units": _req_convert,
    "date_add": _req_date_add,
    "date_diff": _req_date_diff,
    "day_of_week": _req_day_of_week,
    "kv_get": _req_kv_get,
    "kv_set": _req_kv_set,
    "kv_delete": _req_kv_delete,
    "kv_list": _req_kv_list,
    "text_length": _req_text_length,
    "reverse_text": _req_reverse,
    "change_case": _req_change_case,
    "count_occurrences": _req_count,
}
#: Distractor tools shown in ``multiple``/``parallel``/``irrelevance`` tasks, per level.
_DISTRACTORS = {1: 2, 2: 4, 3: 8}


class ToolCallTasks(GeneratedTasks):
    """Procedural single-step function-calling tasks (a :class:`~grpo_envs.tasks.TaskSource`).

    :param num_tasks: how many tasks the source holds.
    :param seed: generator seed; task ``k`` depends only on ``(seed, level, k)``.
    :param level: 1 (short requests, few distractors) to 3 (weeks and prose dates that need
        converting, up to 4 parallel calls, 8 distractors), or a sequence of levels to cycle.
    :param categories: which of ``simple, multiple, parallel, irrelevance`` to cycle through.
    :param abstain: how irrelevance tasks must be answered (``"empty_list"`` or ``"plain_text"``);
        it sets the protocol line of the prompt and must match the verifier's setting.

    ``task.reference`` is ``{"tools": [specs], "ground_truth": [BFCL possible answers],
    "string_match": {param: mode}}``.
    """

    def __init__(
        self,
        num_tasks: int = 1000,
        *,
        seed: int = 0,
        level: int | Sequence[int] = 1,
        categories: Sequence[str] = TOOL_CALL_CATEGORIES,
        abstain: str = "empty_list",
    ) -> None:
        super().__init__(num_tasks, level, LEVELS)
        unknown = [c for c in categories if c not in TOOL_CALL_CATEGORIES]
        if unknown or not categories:
            raise ValueError(f"unknown categories {unknown}; choose from {TOOL_CALL_CATEGORIES}")
        self.seed, self.categories = seed, tuple(categories)
        self.protocol = tool_call_protocol(abstain)

    def generate(self, index: int, level: int) -> Task:
        category = self.categories[index % len(self.categories)]
        rng = random.Random(f"toolcall-{self.seed}-{level}-{index}")
        names = list(_REQUEST_MAKERS)
        if category == "irrelevance":
            shown = rng.sample(names, min(len(names), _DISTRACTORS[level] - 1 or 1))
            request, answers, string_match = rng.choice(IRRELEVANT), [], {}
        else:
            if category == "parallel":
                n_calls = {1: 2, 2: rng.randint(2, 3)}.get(level, rng.randint(3, 4))
                varied = [n for n in names if n != "kv_list"]  # kv_list has one level-1 request only
                same = rng.choice(varied)
                needed = [same] * n_calls if level == 1 else [rng.choice(varied) for _ in range(n_calls)]
            else:
                needed = [rng.choice(names)]
            requests: list[_Request] = []
            for name in needed:  # parallel calls must differ, or matching them in any order means little
                made = _REQUEST_MAKERS[name](rng, level)
                while any(r.answer == made.answer for r in requests):
                    made = _REQUEST_MAKERS[name](rng, level)
                requests.append(made)
            answers = [r.answer for r in requests]
            string_match = {k: v for r in requests for k, v in r.string_match.items()}
            if len(requests) == 1:
                request = requests[0].text
            else:
                request = "Please do all of the following:\n" + "\n".join(
                    f"{i + 1}. {r.text}" for i, r in enumerate(requests)
                )
            shown = list(dict.fromkeys(needed))
            if category in ("multiple", "parallel") and (category == "multiple" or level > 1):
                others = [n for n in names if n not in shown]
                shown += rng.sample(others, min(len(others), _DISTRACTORS[level]))
            rng.shuffle(shown)
        specs = [_SPECS[name] for name in shown]
        return Task(
            prompt=format_tool_prompt(request, specs, self.protocol),
            reference={"tools": specs, "ground_truth": answers, "string_match": string_match},
            id=f"toolcall-{category}-L{level}-{index:05d}",
            meta={"category": category, "level": level, "source": "procedural"},
        )


__all__ = [
    "LEVELS",
    "TOOL_CALL_CATEGORIES",
    "TOOL_USE_PROTOCOL",
    "ToolCallTasks",
    "ToolUseTasks",
    "bfcl_category",
    "bfcl_data_dir",
    "format_tool_prompt",
    "format_tools",
    "load_bfcl",
    "tool_call_protocol",
]
