"""Rewrite a math answer into a canonical surface form: string work only, no parsing, no sympy.

Shared by the plain-number fast path (caller's process) and the sympy parser (worker).
"""

from __future__ import annotations

import re
from fractions import Fraction

from grpo_envs.verify.math_forms import split_top_level

_UNICODE = {
    "\u2212": "-",
    "\u2013": "-",
    "\u00d7": "*",
    "\u22c5": "*",
    "\u00b7": "*",
    "\u00f7": "/",
    "\u03c0": "\\pi ",
    "\u221a": "\\sqrt",
    "\u221e": "\\infty ",
    "\u00b2": "^2",
    "\u00b3": "^3",
    "\u00a0": " ",
    "\u2009": " ",
    "\u202f": " ",
    "\uff05": "%",
    "\u00b0": "",
}
_UNICODE_RE = re.compile("|".join(map(re.escape, _UNICODE)))
# Spacing and sizing commands that carry no meaning in an answer.
_SIZING = re.compile(r"\\(?:left|right|big|Big|bigg|Bigg|bigl|bigr|Bigl|Bigr|displaystyle|textstyle)(?![a-zA-Z])")
_SPACING = re.compile(r"\\(?:quad|qquad)(?![a-zA-Z])|(?<!\\)\\[,;: ]|~")  # "\\ " is a matrix row break
_TEXT_WRAPPERS = re.compile(
    r"\\(?:text|textbf|textrm|textit|textsf|mathrm|mathbf|mathit|mathsf|mbox|operatorname)\s*\{([^{}]*)\}"
)
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\circ|\\degree")
_PERCENT_WORDS = re.compile(r"\s*(?:percent(?:age)?|pct)\b")
_FRACTION_SPELLINGS = re.compile(r"\\[dtc]frac(?![a-zA-Z])")
# "x = 5", "a_1 = 5", "f(2) = 5", "\theta = 5": a name, then "=".
_NAME = r"(?:[A-Za-z]|\\[a-zA-Z]+)(?:_\{?\w+\}?)?(?:\([^()=]*\))?"
_ASSIGNMENT = re.compile(rf"^\s*(?P<name>{_NAME})\s*=\s*(?P<rhs>[^=]+)$")
# "x \in [-2, 7]": the set is the answer.
_MEMBERSHIP = re.compile(rf"^\s*{_NAME}\s*\\in\s+(?P<rhs>.+)$")
# Unit words after a value: "18 dollars", "5\sqrt{2} cm", "10 cm^2". Math names are not units.
_TRAILING_UNIT = re.compile(
    r"^(?P<value>.*?(?:[\d}).!%]|\\[A-Za-z]+))\s+(?P<unit>[A-Za-z]{2,}(?:\s*\^?\s*[23])?(?:\s+[A-Za-z]+)*)$"
)
_NOT_UNITS = {"pi", "sqrt", "sin", "cos", "tan", "log", "ln", "exp", "oo", "i", "e", "or", "and", "infty"}
_THOUSANDS = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?|[-+]?\d{1,3}(?: \d{3})+(?:\.\d+)?")
# 3\frac{1}{2} is the mixed number 3 + 1/2 (MATH's convention), not 3 * 1/2.
_MIXED = re.compile(r"(-?)(\d+)\s*\\frac(?:\{(\d+)\}|(\d))(?:\{(\d+)\}|(\d))")
_REPEATING = re.compile(r"(-?)(\d*)\.(\d*)\\overline\{(\d+)\}")
# What a side of "5 + 7 = 12" holds when it has no unknowns: digits, operators, number commands.
_NO_UNKNOWNS = re.compile(r"(?:[\d\s.+\-*/^(){}%]|\\(?:frac|sqrt|cdot|times|div|pi)(?![A-Za-z]))*")
# "11,\\! 111": a comma with a negative thin space is always a thousands separator.
_THOUSANDS_COMMAND = re.compile(r"(?<=\d),\\!\s*(?=\d{3})")
# "52_8", "4210_{5}": a numeral in base b; the question names the base, the digits are the answer.
_BASE_NUMERAL = re.compile(r"^([0-9A-F]+)_\{?(\d+)\}?$")
_ASSIGNED_NAME = re.compile(rf"\s*{_NAME}\s*")
_OR = re.compile(r"\s+(?:or|and)\s+|,\s*(?:or|and)\s+")


def _mixed_number(match: re.Match[str]) -> str:
    sign, whole, *digits = match.groups()
    numerator, denominator = [d for d in digits if d is not None]
    if int(denominator) == 0:
        return match.group(0)
    value = int(whole) + Fraction(int(numerator), int(denominator))
    return f"{sign}{value.numerator}/{value.denominator}"


def _repeating_decimal(match: re.Match[str]) -> str:
    sign, whole, fixed, period = match.groups()
    value = Fraction(int(whole or "0")) + Fraction(int(fixed or "0"), 10 ** len(fixed))
    value += Fraction(int(period), 10 ** len(fixed) * (10 ** len(period) - 1))
    return f"{sign}{value.numerator}/{value.denominator}"


def _last_side(text: str) -> str:
    """A chain of computations ends in its answer: ``5 + 7 = 12`` -> ``12``, ``x = 5+5+1 = 11`` -> ``11``.

    Only when every side but a leading name is free of unknowns: ``7 = 11a+c`` stays an equation.
    """
    sides = text.split("=")
    if len(sides) < 2 or not sides[-1].strip():
        return text
    computed = sides[1:] if len(sides) > 2 and _ASSIGNED_NAME.fullmatch(sides[0]) else sides
    if all(_NO_UNKNOWNS.fullmatch(side) for side in computed):
        return sides[-1].strip()
    return text


def _named_parts(text: str) -> str:
    """``p=5, q=2`` -> ``(5, 2)``; ``x=2, x=3`` -> ``\\{2, 3\\}``; ``x = 5`` -> ``5``; ``n=1, 2, 3`` -> ``1, 2, 3``."""
    parts = split_top_level(text)
    matches = [_ASSIGNMENT.match(part) for part in parts]
    if len(parts) > 1 and matches[0] and not any(matches[1:]) and "=" not in "".join(parts[1:]):
        return ", ".join([matches[0].group("rhs").strip(), *parts[1:]])  # the values of one unknown
    if not all(matches):
        return text
    names = [m.group("name").replace(" ", "") for m in matches]  # type: ignore[union-attr]
    values = [m.group("rhs").strip() for m in matches]  # type: ignore[union-attr]
    if len(parts) == 1:
        return values[0]
    if len(set(names)) == 1:
        return "\\{" + ", ".join(values) + "\\}"  # the solutions of one unknown: a set
    return "(" + ", ".join(values) + ")"  # one value per unknown, in the order written


def normalize_answer(text: str) -> str:
    """Rewrite an answer into a canonical surface form; no parsing, no evaluation.

    Removes math delimiters, currency signs, ``\\left``/``\\right`` and spacing commands,
    unwraps ``\\text{...}``, drops degree signs and a trailing full stop, reads ``or``/``and``
    between answers as a list, keeps the values of named answers (``x = 5`` -> ``5``,
    ``p=5, q=2`` -> ``(5, 2)``, ``x=2 or x=3`` -> ``\\{2, 3\\}``), drops trailing unit words
    (``18 dollars``, ``5 cm^2``), turns ``\\%`` and "percent" into ``%``, ``\\dfrac``/
    ``\\tfrac``/``\\cfrac`` into ``\\frac``, Unicode math signs into ASCII/LaTeX, and removes
    thousands separators from a plain number (``1,000``, ``1{,}000``, ``1,\\!000``). Linear in
    the length of ``text``.

    Example::

        >>> normalize_answer("$\\\\$1{,}000.$")
        '1000'
        >>> normalize_answer("x = \\\\left(\\\\frac{1}{2}\\\\right)")
        '(\\\\frac{1}{2})'
        >>> normalize_answer("p=5, q=2")
        '(5, 2)'
    """
    s = text.strip()
    s = _UNICODE_RE.sub(lambda m: _UNICODE[m.group(0)], s)
    s = s.replace("\\$", "").replace("$", "").replace("\\(", "").replace("\\)", "")
    s = _THOUSANDS_COMMAND.sub(",", s)
    s = (
        s.replace("\\[", "")
        .replace("\\]", "")
        .replace("\\%", "%")
        .replace("{,}", ",")
        .replace("\\!", "")
        .replace("\\\\", "\\\\ ")
    )
    s = _FRACTION_SPELLINGS.sub("\\\\frac", s)
    s = _SPACING.sub(" ", _SIZING.sub("", s))
    for _ in range(3):  # \text{\textbf{5}}: a few levels, no more (bounded work)
        s = _TEXT_WRAPPERS.sub(r" \1 ", s)
    s = _DEGREES.sub("", s)
    s = _PERCENT_WORDS.sub("%", s)
    s = re.sub(r"\s+", " ", s).strip().rstrip(".").strip()
    s = _OR.sub(", ", s)
    membership = _MEMBERSHIP.match(s)
    if membership:
        s = membership.group("rhs").strip()
    s = _named_parts(_last_side(s))
    if _MIXED.fullmatch(s):
        s = _MIXED.sub(_mixed_number, s)
    s = _REPEATING.sub(_repeating_decimal, s)
    s = _BASE_NUMERAL.sub(r"\1", s)
    unit = _TRAILING_UNIT.match(s)
    if unit and not (set(re.findall(r"[a-z]+", unit.group("unit").lower())) & _NOT_UNITS):
        s = unit.group("value")
    s = re.sub(r"\s+", " ", s)
    body = s[:-1] if s.endswith("%") else s
    if _THOUSANDS.fullmatch(body.strip()):
        s = s.replace(",", "").replace(" ", "")
    return s.strip()


_GROUPED_SUM = re.compile(r"[(\[]|\{[^{}]*[-+][^{}]*\}")


def is_expanded(answer: str) -> bool:
    """Whether ``answer`` is written without grouped sums: ``x^2+2x+1`` is, ``(x+1)^2`` and
    ``{x+1}^2`` are not. Used for tasks that ask to *expand* (equality alone would accept the
    question's own product).
    """
    return _GROUPED_SUM.search(normalize_answer(answer)) is None
