"""Our own reading of intervals, unions, one-unknown inequalities, equations and matrices.

Runs in the verifier worker, before math-verify's parser: these answer types are common in
MATH (about 5% of its test answers) and math-verify's ANTLR grammar takes 5-50 ms to read one,
where splitting the text and parsing the pieces with :func:`~grpo_envs.verify.math_sympy.parse_answer`
takes well under a millisecond. Anything this module does not recognise returns None and is
left to math-verify (:mod:`grpo_envs.verify.math_structured`).
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import sympy

from grpo_envs.verify.math_forms import split_top_level
from grpo_envs.verify.math_normalize import normalize_answer
from grpo_envs.verify.math_sympy import AnswerParseError, parse_answer

_MATRIX = re.compile(r"\\begin\{([pbBvV]?matrix|array)\}(?:\{[lcr|]*\})?(.*)\\end\{\1\}", re.DOTALL)
_CUP = re.compile(r"\\cup(?![A-Za-z])")
# Relation signs, longest first; each maps to (strict, direction): direction +1 means "less than".
_RELATIONS = {
    "\\leq": (False, 1),
    "\\le": (False, 1),
    "\\lt": (True, 1),
    "\\geq": (False, -1),
    "\\ge": (False, -1),
    "\\gt": (True, -1),
    "<=": (False, 1),
    ">=": (False, -1),
    "<": (True, 1),
    ">": (True, -1),
}
_RELATION = re.compile("|".join(re.escape(sign) + ("(?![A-Za-z])" if sign[0] == "\\" else "") for sign in _RELATIONS))
_UNKNOWN = re.compile(r"[A-Za-z](?:_\{?\w+\}?)?")


def _scalar(text: str) -> sympy.Expr:
    value, percent = parse_answer(text)
    if percent or not isinstance(value, sympy.Expr):
        raise AnswerParseError(f"{text!r} is not a single value")
    return value


def _matrix(body: str) -> sympy.Matrix:
    rows = [row for row in re.split(r"\\\\", body) if row.strip()]
    cells = [[_scalar(cell) for cell in row.split("&")] for row in rows]
    if len({len(row) for row in cells}) != 1:
        raise AnswerParseError("the matrix rows have different lengths")
    return sympy.Matrix(cells)


def _interval(text: str) -> sympy.Set | None:
    s = text.strip()
    if len(s) < 5 or s[0] not in "([" or s[-1] not in ")]":
        return None
    ends = split_top_level(s[1:-1], ",")
    if len(ends) != 2:
        return None
    start, end = _scalar(ends[0]), _scalar(ends[1])
    if (start - end).is_positive:
        return None  # "(3, 2)" is a point, not an empty interval
    return sympy.Interval(start, end, left_open=s[0] == "(", right_open=s[-1] == ")")


def _relation(text: str) -> sympy.Set | None:
    """``x < 3``, ``3 > x``, ``-2 \\le x \\le 7`` as the interval they describe."""
    signs = list(_RELATION.finditer(text))
    if not 1 <= len(signs) <= 2:
        return None
    sides = [text[: signs[0].start()]]
    sides += [text[a.end() : b.start()] for a, b in itertools.pairwise(signs)]
    sides.append(text[signs[-1].end() :])
    kinds = [_RELATIONS[sign.group(0)] for sign in signs]
    if len({direction for _, direction in kinds}) != 1:
        return None
    unknowns = [i for i, side in enumerate(sides) if _UNKNOWN.fullmatch(side.strip())]
    if len(unknowns) != 1:
        return None
    k = unknowns[0]
    bounds = {i: _scalar(side) for i, side in enumerate(sides) if i != k}
    if any(bound.free_symbols for bound in bounds.values()):
        return None
    low, high, low_open, high_open = -sympy.oo, sympy.oo, True, True
    for i, (strict, direction) in enumerate(kinds):
        left, right = i, i + 1  # the sign sits between sides[i] and sides[i+1]
        if direction < 0:
            left, right = right, left  # "a > b" is "b < a"
        if right == k:  # bound < x
            low, low_open = bounds[left], strict
        elif left == k:  # x < bound
            high, high_open = bounds[right], strict
        else:
            return None
    return sympy.Interval(low, high, left_open=low_open, right_open=high_open)


def parse_native(text: str, normalize: bool = True) -> Any | None:
    """An interval, union, inequality, equation or matrix read by our parser, or None.

    :raises AnswerParseError: when a piece is refused by a size guard (``[0, 9^{9^{9^9}}]``).

    Example::

        >>> parse_native("(-\\\\infty, -2] \\\\cup [2, \\\\infty)")
        Union(Interval(-oo, -2), Interval(2, oo))
        >>> parse_native("-2 \\\\le x < 7")
        Interval.Ropen(-2, 7)
    """
    s = normalize_answer(text) if normalize else text.strip().strip("$")
    try:
        matrix = _MATRIX.fullmatch(s.strip().removeprefix("[").removesuffix("]").strip())
        if matrix:
            return _matrix(matrix.group(2))
        pieces = _CUP.split(s)
        if len(pieces) > 1:
            intervals = [_interval(piece) for piece in pieces]
            return None if any(i is None for i in intervals) else sympy.Union(*intervals)
        relation = _relation(s)
        if relation is not None:
            return relation
        interval = _interval(s)
        if interval is not None:
            return interval
        sides = split_top_level(s, "=")
        if len(sides) == 2 and all(side.strip() for side in sides):
            return sympy.Eq(_scalar(sides[0]), _scalar(sides[1]), evaluate=False)
    except AnswerParseError as exc:
        if "too large" in str(exc):
            raise  # a guard refused a piece: math-verify must not get a go at building it
        return None
    except (ValueError, TypeError, RecursionError, ZeroDivisionError):
        return None
    return None
