"""ToolUse-v0's tasks: multi-turn tool use whose answer needs chained calls of real tools.

:class:`ToolUseTasks` needs one (level 1), two (level 2) or three and more (level 3) chained
tool calls; each task carries a reference solution path, and its answer is computed by running
that path through the real tools (:mod:`grpo_envs.tools`). Task ``k`` depends only on
``(seed, level, k)``.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from grpo_envs.tasks.base import GeneratedTasks, Task
from grpo_envs.tasks.tool_format import LEVELS, TOOL_USE_PROTOCOL, format_tool_prompt
from grpo_envs.tasks.tool_vocabulary import (
    CONVERSIONS,
    EVENTS,
    ITEMS,
    PEOPLE,
    UNIT_WORDS,
    date,
    expression,
    phrase,
)
from grpo_envs.tools import DEFAULT_TOOLS, KeyValueStore, format_value

_TOOLS = {tool.name: tool for tool in DEFAULT_TOOLS}
_SPECS: dict[str, dict[str, Any]] = {tool.name: tool.spec for tool in DEFAULT_TOOLS}


@dataclass
class _Episode:
    """A multi-turn task under construction: the tools it needs and the reference path."""

    request: str
    store: dict[str, Any] = field(default_factory=dict)
    solution: list[dict[str, Any]] = field(default_factory=list)
    answer: Any = None
    kind: str = "number"
    tolerance: float = 0.0
    case_sensitive: bool = True
    _kv: KeyValueStore | None = None

    def call(self, name: str, **arguments: Any) -> Any:
        """Run a tool of the reference path for real, so the answer is what the tools say."""
        self.solution.append({"name": name, "arguments": arguments})
        tool = _TOOLS[name]
        if tool.uses_store:
            if self._kv is None:
                self._kv = KeyValueStore(self.store)
            return tool.function(store=self._kv, **arguments)
        return tool.function(**arguments)


def _use_arith(rng: random.Random) -> _Episode:
    expr = expression(rng, 2)
    ep = _Episode(f"What is {expr}?")
    ep.answer = ep.call("calculate", expression=expr)
    return ep


def _use_convert(rng: random.Random) -> _Episode:
    source, target = rng.choice(CONVERSIONS)
    value = round(rng.uniform(1, 300), 1)
    ep = _Episode(
        f"How many {UNIT_WORDS[target]} are {format_value(value)} {UNIT_WORDS[source]}? Round to 2 decimal places.",
        tolerance=0.01,
    )
    ep.answer = round(ep.call("convert_units", value=value, from_unit=source, to_unit=target), 2)
    return ep


def _use_days_between(rng: random.Random) -> _Episode:
    first, second = sorted([date(rng), date(rng)])
    ep = _Episode(f"How many days are there from {first.isoformat()} to {second.isoformat()}?")
    ep.answer = ep.call("date_diff", start=first.isoformat(), end=second.isoformat())
    return ep


def _use_weekday(rng: random.Random) -> _Episode:
    day = date(rng)
    ep = _Episode(f"Which day of the week was {day.isoformat()}?", kind="string", case_sensitive=False)
    ep.answer = ep.call("day_of_week", date=day.isoformat())
    return ep


def _use_reverse(rng: random.Random) -> _Episode:
    text = phrase(rng, 2)
    ep = _Episode(f"What is the text '{text}' written backwards?", kind="string")
    ep.answer = ep.call("reverse_text", text=text)
    return ep


def _use_count(rng: random.Random) -> _Episode:
    text, sub = phrase(rng, 5), rng.choice(("an", "er", "o", "e", "on", "a"))
    ep = _Episode(f"How many times does '{sub}' occur in '{text}'?")
    ep.answer = ep.call("count_occurrences", text=text, substring=sub)
    return ep


def _use_lookup(rng: random.Random) -> _Episode:
    people = rng.sample(PEOPLE, 4)
    store = {f"user:{p}:city": rng.choice(("Lisbon", "Nairobi", "Osaka", "Quito", "Tallinn", "Perth")) for p in people}
    person = rng.choice(people)
    ep = _Episode(
        f"In which city does {person} live? The key-value store holds each user's city under 'user:<name>:city'.",
        store=store,
        kind="string",
        case_sensitive=False,
    )
    ep.answer = ep.call("kv_get", key=f"user:{person}:city")
    return ep


def _prices(rng: random.Random, n: int) -> tuple[list[str], dict[str, float]]:
    items = rng.sample(ITEMS, n)
    return items, {f"price:{item}": round(rng.uniform(0.5, 20), 2) for item in rng.sample(ITEMS, 6) + items}


def _use_shopping(rng: random.Random, n_items: int) -> _Episode:
    items, store = _prices(rng, n_items)
    quantities = [rng.randint(2, 9) for _ in items]
    parts = [f"{q} {item}s" for q, item in zip(quantities, items)]
    listing = ", ".join(parts[:-1]) + " and " + parts[-1]
    ep = _Episode(
        f"How much do {listing} cost in total? Unit prices are in the key-value store under 'price:<item>'.",
        store=store,
        tolerance=0.005,
    )
    prices = [ep.call("kv_get", key=f"price:{item}") for item in items]
    expr = " + ".join(f"{q} * {format_value(p)}" for q, p in zip(quantities, prices))
    ep.answer = ep.call("calculate", expression=expr)
    return ep


def _use_weekday_after(rng: random.Random) -> _Episode:
    day, n = date(rng), rng.randint(10, 500)
    ep = _Episode(f"Which day of the week is {n} days after {day.isoformat()}?", kind="string", case_sensitive=False)
    later = ep.call("date_add", date=day.isoformat(), days=n)
    ep.answer = ep.call("day_of_week", date=later)
    return ep


def _use_split_distance(rng: random.Random) -> _Episode:
    source, target = rng.choice([("mi", "km"), ("km", "mi"), ("ft", "m"), ("m", "ft")])
    value, legs = rng.randint(20, 900), rng.randint(3, 9)
    ep = _Episode(
        f"A route of {value} {UNIT_WORDS[source]} is split into {legs} equal legs. How long is each "
        f"leg in {UNIT_WORDS[target]}? Round to 2 decimal places.",
        tolerance=0.01,
    )
    total = ep.call("convert_units", value=value, from_unit=source, to_unit=target)
    ep.answer = round(ep.call("calculate", expression=f"{format_value(total)} / {legs}"), 2)
    return ep


def _use_shout_backwards(rng: random.Random) -> _Episode:
    text = phrase(rng, 2)
    ep = _Episode(f"Convert '{text}' to upper case, then reverse it. What is the result?", kind="string")
    upper = ep.call("change_case", text=text, case="upper")
    ep.answer = ep.call("reverse_text", text=upper)
    return ep


def _use_event_length(rng: random.Random) -> _Episode:
    events = rng.sample(EVENTS, 3)
    store: dict[str, Any] = {}
    for event in events:
        start = date(rng, 2020, 2026)
        store[f"event:{event}:start"] = start.isoformat()
        store[f"event:{event}:end"] = (start + dt.timedelta(days=rng.randint(20, 400))).isoformat()
    event = rng.choice(events)
    ep = _Episode(
        f"How many weeks does the {event} last, from its start date to its end date? Round to 2 "
        f"decimal places. The store has the dates under 'event:{event}:start' and 'event:{event}:end'.",
        store=store,
        tolerance=0.01,
    )
    start, end = ep.call("kv_get", key=f"event:{event}:start"), ep.call("kv_get", key=f"event:{event}:end")
    days = ep.call("date_diff", start=start, end=end)
    ep.answer = round(ep.call("calculate", expression=f"{days} / 7"), 2)
    return ep


def _use_shipping_weight(rng: random.Random) -> _Episode:
    items = rng.sample(ITEMS, 3)
    store = {f"weight_lb:{item}": round(rng.uniform(0.5, 15), 1) for item in items}
    item, count = rng.choice(items), rng.randint(3, 40)
    ep = _Episode(
        f"What do {count} {item}s weigh in kilograms? The store has each item's weight in pounds under "
        "'weight_lb:<item>'. Round to 2 decimal places.",
        store=store,
        tolerance=0.01,
    )
    each = ep.call("kv_get", key=f"weight_lb:{item}")
    total = ep.call("calculate", expression=f"{count} * {format_value(each)}")
    ep.answer = round(ep.call("convert_units", value=total, from_unit="lb", to_unit="kg"), 2)
    return ep


_USE_FAMILIES: dict[int, tuple[Callable[[random.Random], _Episode], ...]] = {
    1: (_use_arith, _use_convert, _use_days_between, _use_weekday, _use_reverse, _use_count, _use_lookup),
    2: (lambda rng: _use_shopping(rng, 2), _use_weekday_after, _use_split_distance, _use_shout_backwards),
    3: (lambda rng: _use_shopping(rng, 3), _use_event_length, _use_shipping_weight),
}
#: Tools shown beyond the ones the reference path uses, per level.
_USE_DISTRACTORS = {1: 1, 2: 2, 3: 4}


class ToolUseTasks(GeneratedTasks):
    """Procedural multi-turn tool-use tasks (a :class:`~grpo_envs.tasks.TaskSource`).

    :param num_tasks: how many tasks the source holds.
    :param seed: generator seed; task ``k`` depends only on ``(seed, level, k)``.
    :param level: 1 (one call answers it), 2 (two chained calls), 3 (three or four, with the
        store), or a sequence of levels to cycle through.

    ``task.reference`` holds ``tools`` (names shown), ``store`` (the key-value store's starting
    contents), ``answer`` (a string), ``kind`` (``number`` or ``string``), ``tolerance``
    (absolute, for numbers), ``case_sensitive`` (for strings) and ``solution`` (a reference
    list of calls that leads to the answer).
    """

    def __init__(self, num_tasks: int = 1000, *, seed: int = 0, level: int | Sequence[int] = 1) -> None:
        super().__init__(num_tasks, level, LEVELS)
        self.seed = seed

    def generate(self, index: int, level: int) -> Task:
        rng = random.Random(f"tooluse-{self.seed}-{level}-{index}")
        families = _USE_FAMILIES[level]
        family = (index // len(self.levels)) % len(families)
        ep = families[family](rng)
        needed = list(dict.fromkeys(call["name"] for call in ep.solution))
        others = [t.name for t in DEFAULT_TOOLS if t.name not in needed]
        shown = needed + rng.sample(others, _USE_DISTRACTORS[level])
        rng.shuffle(shown)
        reference = {
            "tools": shown,
            "store": dict(ep.store),
            "answer": format_value(ep.answer),
            "kind": ep.kind,
            "tolerance": ep.tolerance,
            "case_sensitive": ep.case_sensitive,
            "solution": ep.solution,
        }
        return Task(
            prompt=format_tool_prompt(ep.request, [_SPECS[n] for n in shown], TOOL_USE_PROTOCOL),
            reference=reference,
            id=f"tooluse-L{level}-{index:05d}",
            meta={"level": level, "num_solution_calls": len(ep.solution), "source": "procedural"},
        )
