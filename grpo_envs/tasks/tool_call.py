"""Tool-use tasks: procedural generators for ToolCall-v0 and ToolUse-v0, and a BFCL loader.

- :class:`ToolCallTasks`: single-step function-calling tasks over the project's own tools
  (:mod:`grpo_envs.tools`), in the four BFCL categories ``simple`` (one tool shown),
  ``multiple`` (choose among several), ``parallel`` (several calls) and ``irrelevance`` (no
  tool applies). References use BFCL's possible-answer format.
- :class:`ToolUseTasks`: multi-turn tasks whose answer needs one (level 1), two (level 2) or
  three and more (level 3) chained tool calls; each task carries a reference solution path,
  and its answer is computed by running that path through the real tools.
- :func:`load_bfcl`: BFCL question + ``possible_answer`` JSONL files, from a path or from an
  installed ``bfcl-eval`` package.

Generators are deterministic: task ``k`` depends only on ``(seed, level, k)``.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grpo_envs.tasks.base import GeneratedTasks, Task
from grpo_envs.tools import DEFAULT_TOOLS, KeyValueStore, format_value, strings, units
from grpo_envs.verify.tool_call import ABSTAIN_MODES, function_name

TOOL_CALL_CATEGORIES = ("simple", "multiple", "parallel", "irrelevance")
LEVELS = (1, 2, 3)

_TOOLS = {tool.name: tool for tool in DEFAULT_TOOLS}
_SPECS: dict[str, dict[str, Any]] = {tool.name: tool.spec for tool in DEFAULT_TOOLS}


# -- prompts -------------------------------------------------------------------------------


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


# -- vocabulary ----------------------------------------------------------------------------

_WORDS = (
    "apple",
    "river",
    "stone",
    "cloud",
    "banana",
    "garden",
    "window",
    "silver",
    "rocket",
    "pepper",
    "marble",
    "candle",
    "forest",
    "puzzle",
    "violet",
    "anchor",
    "lemon",
    "tiger",
    "harbor",
    "mango",
)
_ITEMS = ("apple", "pear", "lemon", "melon", "carrot", "onion", "bagel", "muffin", "candle", "notebook")
_PEOPLE = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi")
_EVENTS = ("conference", "festival", "workshop", "hackathon", "retreat", "exhibition")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_CONVERSIONS = (  # (from, to) unit symbols of the same dimension
    ("km", "mi"),
    ("mi", "km"),
    ("m", "ft"),
    ("ft", "m"),
    ("in", "cm"),
    ("cm", "in"),
    ("kg", "lb"),
    ("lb", "kg"),
    ("oz", "g"),
    ("l", "gal"),
    ("gal", "l"),
    ("h", "min"),
    ("week", "h"),
    ("C", "F"),
    ("F", "C"),
    ("km/h", "mph"),
    ("acre", "m2"),
)
_UNIT_WORDS = {
    "km": "kilometers",
    "mi": "miles",
    "m": "meters",
    "ft": "feet",
    "in": "inches",
    "cm": "centimeters",
    "kg": "kilograms",
    "lb": "pounds",
    "oz": "ounces",
    "g": "grams",
    "l": "liters",
    "gal": "gallons",
    "h": "hours",
    "min": "minutes",
    "week": "weeks",
    "C": "degrees Celsius",
    "F": "degrees Fahrenheit",
    "km/h": "kilometers per hour",
    "mph": "miles per hour",
    "acre": "acres",
    "m2": "square meters",
}
_IRRELEVANT = (
    "Write a haiku about autumn leaves.",
    "Who wrote the novel Pride and Prejudice?",
    "What is the capital of Australia?",
    "Translate 'good morning' into Spanish.",
    "Recommend a good science-fiction movie for tonight.",
    "What's the weather going to be like in Oslo tomorrow?",
    "Book me a table for two at an Italian restaurant.",
    "Tell me a joke about penguins.",
    "Summarise the plot of Romeo and Juliet in one sentence.",
    "Which planet in our solar system has the most moons?",
    "Send an email to my manager saying I will be late.",
    "What are some tips for sleeping better?",
    "Play some relaxing jazz music.",
    "Who painted the Mona Lisa?",
    "Suggest a name for a golden retriever puppy.",
    "Order a large pepperoni pizza to my address.",
)


def _date(rng: random.Random, first_year: int = 2000, last_year: int = 2030) -> dt.date:
    start = dt.date(first_year, 1, 1).toordinal()
    return dt.date.fromordinal(rng.randint(start, dt.date(last_year, 12, 31).toordinal()))


def _prose_date(day: dt.date) -> str:
    return f"{_MONTHS[day.month - 1]} {day.day}, {day.year}"


def _phrase(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words))


def _expression(rng: random.Random, level: int) -> str:
    """An integer expression with 1 (level 1) to 3 operators, some parenthesised."""
    n_ops = {1: 1, 2: 2}.get(level, 3)
    expr = str(rng.randint(2, 99))
    for _ in range(n_ops):
        op = rng.choice(["+", "-", "*"])
        operand = str(rng.randint(2, 60))
        expr = f"({expr}) {op} {operand}" if op == "*" and any(o in expr for o in "+-") else f"{expr} {op} {operand}"
    return expr


# -- ToolCall-v0 ---------------------------------------------------------------------------


@dataclass
class _Request:
    """One request and the reference call that serves it."""

    text: str
    answer: dict[str, dict[str, list[Any]]]
    string_match: dict[str, str] = field(default_factory=dict)


def _req_calculate(rng: random.Random, level: int) -> _Request:
    expr = _expression(rng, level)
    text = rng.choice([f"Compute {expr}.", f"What is {expr}?", f"Use the calculator to evaluate {expr}."])
    return _Request(text, {"calculate": {"expression": [expr]}}, {"expression": "ignore_space"})


def _req_convert(rng: random.Random, level: int) -> _Request:
    source, target = rng.choice(_CONVERSIONS)
    value: float = rng.randint(1, 500) if level == 1 else round(rng.uniform(0.5, 500), 1)
    text = f"Convert {format_value(value)} {_UNIT_WORDS[source]} to {_UNIT_WORDS[target]}."
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
    day, n = _date(rng), rng.randint(1, 400)
    shown = day.isoformat() if level < 3 else _prose_date(day)
    if level == 1:
        return _Request(f"What date is {n} days after {shown}?", {"date_add": {"date": [day.isoformat()], "days": [n]}})
    weeks = rng.randint(1, 30)
    text, days = rng.choice(
        [(f"What date is {weeks} weeks after {shown}?", 7 * weeks), (f"What date was it {n} days before {shown}?", -n)]
    )
    return _Request(text, {"date_add": {"date": [day.isoformat()], "days": [days]}})


def _req_date_diff(rng: random.Random, level: int) -> _Request:
    first, second = sorted([_date(rng), _date(rng)])
    a, b = (first.isoformat(), second.isoformat()) if level < 3 else (_prose_date(first), _prose_date(second))
    return _Request(
        f"How many days are there from {a} to {b}?",
        {"date_diff": {"start": [first.isoformat()], "end": [second.isoformat()]}},
    )


def _req_day_of_week(rng: random.Random, level: int) -> _Request:
    day = _date(rng)
    shown = day.isoformat() if level < 3 else _prose_date(day)
    return _Request(f"Which day of the week is {shown}?", {"day_of_week": {"date": [day.isoformat()]}})


def _key(rng: random.Random) -> str:
    return f"{rng.choice(('user', 'config', 'order', 'note'))}:{rng.choice(_PEOPLE)}:{rng.randint(1, 99)}"


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
    value = _phrase(rng, 2)
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
    text = _phrase(rng, rng.randint(1, 3))
    return _Request(
        f"How many characters are in the text '{text}'?", {"text_length": {"text": [text]}}, {"text": "exact"}
    )


def _req_reverse(rng: random.Random, level: int) -> _Request:
    text = _phrase(rng, rng.randint(1, 2))
    return _Request(f"Reverse the text '{text}'.", {"reverse_text": {"text": [text]}}, {"text": "exact"})


def _req_change_case(rng: random.Random, level: int) -> _Request:
    text, case = _phrase(rng, 2), rng.choice(strings.CASES)
    wording = {"upper": "upper case", "lower": "lower case", "title": "title case"}[case]
    if case == "lower":
        text = text.upper()
    return _Request(
        f"Convert '{text}' to {wording}.", {"change_case": {"text": [text], "case": [case]}}, {"text": "exact"}
    )


def _req_count(rng: random.Random, level: int) -> _Request:
    text, sub = _phrase(rng, 4), rng.choice(("an", "er", "o", "e", "on", "a"))
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
            request, answers, string_match = rng.choice(_IRRELEVANT), [], {}
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
                request = _REQUEST_MAKERS[name](rng, level)
                while any(r.answer == request.answer for r in requests):
                    request = _REQUEST_MAKERS[name](rng, level)
                requests.append(request)
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


# -- ToolUse-v0 ----------------------------------------------------------------------------


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
    expr = _expression(rng, 2)
    ep = _Episode(f"What is {expr}?")
    ep.answer = ep.call("calculate", expression=expr)
    return ep


def _use_convert(rng: random.Random) -> _Episode:
    source, target = rng.choice(_CONVERSIONS)
    value = round(rng.uniform(1, 300), 1)
    ep = _Episode(
        f"How many {_UNIT_WORDS[target]} are {format_value(value)} {_UNIT_WORDS[source]}? Round to 2 decimal places.",
        tolerance=0.01,
    )
    ep.answer = round(ep.call("convert_units", value=value, from_unit=source, to_unit=target), 2)
    return ep


def _use_days_between(rng: random.Random) -> _Episode:
    first, second = sorted([_date(rng), _date(rng)])
    ep = _Episode(f"How many days are there from {first.isoformat()} to {second.isoformat()}?")
    ep.answer = ep.call("date_diff", start=first.isoformat(), end=second.isoformat())
    return ep


def _use_weekday(rng: random.Random) -> _Episode:
    day = _date(rng)
    ep = _Episode(f"Which day of the week was {day.isoformat()}?", kind="string", case_sensitive=False)
    ep.answer = ep.call("day_of_week", date=day.isoformat())
    return ep


def _use_reverse(rng: random.Random) -> _Episode:
    text = _phrase(rng, 2)
    ep = _Episode(f"What is the text '{text}' written backwards?", kind="string")
    ep.answer = ep.call("reverse_text", text=text)
    return ep


def _use_count(rng: random.Random) -> _Episode:
    text, sub = _phrase(rng, 5), rng.choice(("an", "er", "o", "e", "on", "a"))
    ep = _Episode(f"How many times does '{sub}' occur in '{text}'?")
    ep.answer = ep.call("count_occurrences", text=text, substring=sub)
    return ep


def _use_lookup(rng: random.Random) -> _Episode:
    people = rng.sample(_PEOPLE, 4)
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
    items = rng.sample(_ITEMS, n)
    return items, {f"price:{item}": round(rng.uniform(0.5, 20), 2) for item in rng.sample(_ITEMS, 6) + items}


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
    day, n = _date(rng), rng.randint(10, 500)
    ep = _Episode(f"Which day of the week is {n} days after {day.isoformat()}?", kind="string", case_sensitive=False)
    later = ep.call("date_add", date=day.isoformat(), days=n)
    ep.answer = ep.call("day_of_week", date=later)
    return ep


def _use_split_distance(rng: random.Random) -> _Episode:
    source, target = rng.choice([("mi", "km"), ("km", "mi"), ("ft", "m"), ("m", "ft")])
    value, legs = rng.randint(20, 900), rng.randint(3, 9)
    ep = _Episode(
        f"A route of {value} {_UNIT_WORDS[source]} is split into {legs} equal legs. How long is each "
        f"leg in {_UNIT_WORDS[target]}? Round to 2 decimal places.",
        tolerance=0.01,
    )
    total = ep.call("convert_units", value=value, from_unit=source, to_unit=target)
    ep.answer = round(ep.call("calculate", expression=f"{format_value(total)} / {legs}"), 2)
    return ep


def _use_shout_backwards(rng: random.Random) -> _Episode:
    text = _phrase(rng, 2)
    ep = _Episode(f"Convert '{text}' to upper case, then reverse it. What is the result?", kind="string")
    upper = ep.call("change_case", text=text, case="upper")
    ep.answer = ep.call("reverse_text", text=upper)
    return ep


def _use_event_length(rng: random.Random) -> _Episode:
    events = rng.sample(_EVENTS, 3)
    store: dict[str, Any] = {}
    for event in events:
        start = _date(rng, 2020, 2026)
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
    items = rng.sample(_ITEMS, 3)
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


# -- BFCL ----------------------------------------------------------------------------------

_BFCL_PREFIX_RE = re.compile(r"^BFCL_v\d+_")


def bfcl_category(name: str) -> str:
    """BFCL's category of a file (``BFCL_v4_parallel_multiple.json`` -> ``parallel_multiple``)."""
    return _BFCL_PREFIX_RE.sub("", Path(name).stem)


def _category_family(category: str) -> str:
    """One of this project's four categories for a BFCL category name."""
    if "irrelevance" in category:
        return "irrelevance"
    if "parallel" in category:
        return "parallel"
    if "multiple" in category:
        return "multiple"
    return "simple"


def bfcl_data_dir() -> Path:
    """The data folder of an installed ``bfcl-eval`` package (``pip install --no-deps bfcl-eval``).

    :raises ModuleNotFoundError: the package is not installed.
    """
    import importlib.resources

    try:
        root = importlib.resources.files("bfcl_eval")
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "bfcl-eval is not installed; pass a path to a BFCL question file, or run "
            "`pip install --no-deps bfcl-eval` to use its bundled data"
        ) from None
    return Path(str(root)) / "data"


def _resolve_bfcl_source(source: str | Path) -> Path:
    path = Path(source)
    if path.is_file():
        return path
    if path.suffix or "/" in str(source) or "\\" in str(source):
        raise FileNotFoundError(f"BFCL question file {str(source)!r} does not exist")
    data = bfcl_data_dir()
    wanted = bfcl_category(str(source))
    # Compare whole category names: the glob alone would let "multiple" match "parallel_multiple".
    candidates = sorted(p for p in data.glob(f"BFCL_v*_{wanted}.json") if bfcl_category(p.name) == wanted)
    if not candidates:
        known = sorted(bfcl_category(p.name) for p in data.glob("BFCL_v*_*.json"))
        raise FileNotFoundError(f"no BFCL category {str(source)!r} in {data}; known categories: {known}")
    return candidates[-1]


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number} is not valid JSON ({exc.msg})") from None
    return rows


def _bfcl_request(question: Any, entry_id: str) -> str:
    if isinstance(question, str):
        return question
    turns = question if isinstance(question, list) else []
    if turns and isinstance(turns[0], dict):  # a single turn given as a flat message list
        turns = [turns]
    if len(turns) != 1:
        raise ValueError(f"BFCL entry {entry_id!r} has {len(turns)} turns; only single-turn categories are supported")
    parts = []
    for message in turns[0]:
        role, content = message.get("role", "user"), str(message.get("content", ""))
        parts.append(content if role == "user" and len(turns[0]) == 1 else f"[{role}] {content}")
    return "\n".join(parts)


def load_bfcl(
    source: str | Path,
    answers: str | Path | None = None,
    *,
    abstain: str = "empty_list",
    limit: int | None = None,
) -> list[Task]:
    """Load BFCL single-turn tasks (question JSONL + ``possible_answer`` JSONL).

    :param source: a question file path, or a category name (``"simple_python"``,
        ``"parallel_multiple"``, ...) looked up in an installed ``bfcl-eval`` package via
        ``importlib.resources`` (``pip install --no-deps bfcl-eval``; not a dependency).
    :param answers: the possible-answer file; by default ``possible_answer/<same name>`` next
        to the question file. Irrelevance categories have none: their reference is ``[]``.
    :param abstain: how irrelevance tasks must be answered (sets the prompt's protocol line).
    :param limit: keep only the first ``limit`` tasks.
    :returns: tasks whose ``reference`` is ``{"tools", "ground_truth", "string_match": {}}``.
    :raises ValueError: a multi-turn, Java or JavaScript category, or an entry without answer.
    """
    path = _resolve_bfcl_source(source)
    category = bfcl_category(path.name)
    if category.startswith("multi_turn") or category.endswith(("_java", "_javascript")):
        raise ValueError(f"BFCL category {category!r} is not supported; use a single-turn Python category")
    answer_path = Path(answers) if answers is not None else path.parent / "possible_answer" / path.name
    family = _category_family(category)
    ground_truth: dict[str, list[Any]] = {}
    if answer_path.is_file():
        for row in _read_jsonl(answer_path):
            truth = row.get("ground_truth", [])
            ground_truth[str(row["id"])] = [truth] if isinstance(truth, dict) else list(truth)
    elif family != "irrelevance":
        raise FileNotFoundError(f"no possible-answer file for {path.name}: expected {answer_path}; pass answers=...")
    protocol = tool_call_protocol(abstain)
    tasks = []
    for row in _read_jsonl(path)[:limit]:
        entry_id = str(row["id"])
        functions = row.get("function", [])
        functions = [functions] if isinstance(functions, dict) else list(functions)
        if family == "irrelevance":
            truth = []
        elif entry_id not in ground_truth:
            raise ValueError(f"BFCL entry {entry_id!r} has no ground truth in {answer_path}")
        else:
            truth = ground_truth[entry_id]
        names = {function_name(f) for f in functions}
        missing = [name for call in truth for name in call if name not in names]
        if missing:
            raise ValueError(
                f"BFCL entry {entry_id!r}: ground truth calls {missing}, which are not among its functions"
            )
        tasks.append(
            Task(
                prompt=format_tool_prompt(_bfcl_request(row.get("question"), entry_id), functions, protocol),
                reference={"tools": functions, "ground_truth": truth, "string_match": {}},
                id=entry_id,
                meta={"category": family, "bfcl_category": category, "source": "bfcl"},
            )
        )
    if not tasks:
        raise ValueError(f"{path} holds no tasks")
    return tasks


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
