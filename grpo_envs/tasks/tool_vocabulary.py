"""Words, names, units and dates the tool-task generators draw from (shared by ToolCall and ToolUse)."""

from __future__ import annotations

import datetime as dt
import random

WORDS = (
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
ITEMS = ("apple", "pear", "lemon", "melon", "carrot", "onion", "bagel", "muffin", "candle", "notebook")
PEOPLE = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi")
EVENTS = ("conference", "festival", "workshop", "hackathon", "retreat", "exhibition")
MONTHS = (
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
CONVERSIONS = (  # (from, to) unit symbols of the same dimension
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
UNIT_WORDS = {
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
IRRELEVANT = (
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


def date(rng: random.Random, first_year: int = 2000, last_year: int = 2030) -> dt.date:
    start = dt.date(first_year, 1, 1).toordinal()
    return dt.date.fromordinal(rng.randint(start, dt.date(last_year, 12, 31).toordinal()))


def prose_date(day: dt.date) -> str:
    return f"{MONTHS[day.month - 1]} {day.day}, {day.year}"


def phrase(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def expression(rng: random.Random, level: int) -> str:
    """An integer expression with 1 (level 1) to 3 operators, some parenthesised."""
    n_ops = {1: 1, 2: 2}.get(level, 3)
    expr = str(rng.randint(2, 99))
    for _ in range(n_ops):
        op = rng.choice(["+", "-", "*"])
        operand = str(rng.randint(2, 60))
        expr = f"({expr}) {op} {operand}" if op == "*" and any(o in expr for o in "+-") else f"{expr} {op} {operand}"
    return expr
