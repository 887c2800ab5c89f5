"""The slow path for answers our own parser does not read: math-verify's parser, our comparisons.

Runs inside the verifier worker only (:func:`grpo_envs.verify.math.get_math_worker`), after
:func:`grpo_envs.verify.math_sympy.compare_answers` failed to parse one side. math-verify
(``latex2sympy2_extended``) reads intervals and unions, matrices and vectors, equations and
relations, ``\\pm``, sets, and LaTeX our parser refuses. Its own timeouts use ``signal.alarm``
(main thread only; they would replace a caller's alarm), so they are switched off here: the
worker's hard wall-clock timeout bounds every call instead.

The comparison of what it parsed is ours, type by type (documented in docs/math.md):

- equations: the same solution set, tested as ``lhs - rhs`` of one being a nonzero constant
  multiple of the other's (``2x+2=0`` equals ``-x-1=0``);
- a named reference ``k = 1/3`` against an unnamed answer: the right-hand sides;
- intervals and unions: the same endpoints (numerically equal) and the same open/closed ends;
  a relation in one unknown is read as the interval it describes (``x < 3`` is ``(-oo, 3)``);
- finite sets: unordered, element by element; tuples: ordered; matrices: same shape, entry by entry;
- numbers and expressions: :func:`grpo_envs.verify.math_sympy.compare_values` (exact, then
  numeric within tolerance: ``1/2004!`` is not ``1/2006!``).

Anything else (a type pair none of these covers) is left to ``math_verify.verify`` itself.
"""

from __future__ import annotations

import logging
from typing import Any

import sympy

from grpo_envs.verify.math_forms import text_answer
from grpo_envs.verify.math_normalize import normalize_answer
from grpo_envs.verify.math_sets import parse_native
from grpo_envs.verify.math_sympy import AnswerParseError, compare_values, parse_answer
from grpo_envs.verify.result import CORRECT, ERROR, PARSE_FAILED, WRONG

try:  # a declared dependency; without it only our own parser's answer types are read
    from math_verify import ExprExtractionConfig, LatexExtractionConfig
    from math_verify import parse as _mv_parse
    from math_verify import verify as _mv_verify
except ImportError:  # pragma: no cover - exercised only in a broken install
    _mv_parse = None

# It warns on every call that its own timeouts are off; here that is by design (see above).
logging.getLogger("math_verify").setLevel(logging.ERROR)
_CONFIG = None if _mv_parse is None else [LatexExtractionConfig(), ExprExtractionConfig()]
_SET_TYPES = (sympy.Interval, sympy.Union, sympy.FiniteSet, sympy.EmptySet.__class__)


def parse_structured(text: str, normalize: bool = True) -> Any | None:
    """``text`` read as a sympy object: by :func:`~grpo_envs.verify.math_sets.parse_native`
    when it can (fast), else by math-verify's parser; None when neither reads anything.

    :param normalize: read our normalised form first (named answers, units and hedges are
        already resolved there); the raw text is read only if that fails.
    """
    native = parse_native(text, normalize)
    if native is not None:
        return native
    if _mv_parse is None:
        return None
    for candidate in (normalize_answer(text), text) if normalize else (text,):
        parsed = _mv_parse("\\boxed{" + candidate + "}", _CONFIG, parsing_timeout=None)
        for item in parsed:
            if isinstance(item, sympy.Basic) and item.has(sympy.zoo, sympy.nan):
                continue  # undefined ("12:00" read as 12/0) is no value
            if not isinstance(item, str):
                return item
    return None


def _as_set(value: Any) -> Any:
    """A relation in one unknown as the set it describes (``x < 3`` -> ``(-oo, 3)``), else ``value``."""
    if isinstance(value, (sympy.core.relational.Relational, sympy.And, sympy.Or)) and not isinstance(value, sympy.Eq):
        symbols = value.free_symbols
        if len(symbols) == 1:
            try:
                return value.as_set()
            except (NotImplementedError, TypeError, ValueError):
                return value
    return value


def _equations_equal(a: sympy.Eq, b: sympy.Eq) -> bool:
    left, right = a.lhs - a.rhs, b.lhs - b.rhs
    if left == 0 or right == 0:
        return bool(left == right)
    ratio = sympy.simplify(left / right)
    return bool(ratio.is_number and ratio != 0 and ratio.is_finite)


def _intervals_equal(a: sympy.Interval, b: sympy.Interval, rel_tol: float, abs_tol: float) -> bool:
    if (a.left_open, a.right_open) != (b.left_open, b.right_open):
        return False
    return bool(compare_values(a.start, b.start, rel_tol, abs_tol) and compare_values(a.end, b.end, rel_tol, abs_tol))


def _pieces(value: Any) -> list[Any]:
    if isinstance(value, sympy.Union):
        return sorted(value.args, key=lambda piece: float(piece.inf) if piece.inf.is_number else 0.0)
    return [value]


def structured_equal(answer: Any, reference: Any, rel_tol: float, abs_tol: float) -> bool | None:
    """Whether two parsed answers are equal; None when no rule of this module covers the pair."""
    if isinstance(reference, sympy.Eq) and isinstance(answer, sympy.Eq):
        return _equations_equal(reference, answer)
    if isinstance(reference, sympy.Eq) and isinstance(reference.lhs, sympy.Symbol) and isinstance(answer, sympy.Expr):
        return structured_equal(answer, reference.rhs, rel_tol, abs_tol)
    answer, reference = _as_set(answer), _as_set(reference)
    if isinstance(reference, (sympy.Interval, sympy.Union)) or isinstance(answer, (sympy.Interval, sympy.Union)):
        a_pieces, r_pieces = _pieces(answer), _pieces(reference)
        if len(a_pieces) != len(r_pieces):
            return False
        for a, r in zip(a_pieces, r_pieces, strict=True):
            if isinstance(a, sympy.Interval) and isinstance(r, sympy.Interval):
                if not _intervals_equal(a, r, rel_tol, abs_tol):
                    return False
            elif isinstance(a, sympy.FiniteSet) and isinstance(r, sympy.FiniteSet):
                if not structured_equal(a, r, rel_tol, abs_tol):
                    return False
            else:
                return False
        return True
    if isinstance(reference, sympy.FiniteSet) or isinstance(answer, sympy.FiniteSet):
        if not (isinstance(reference, sympy.FiniteSet) and isinstance(answer, sympy.FiniteSet)):
            return False
        return bool(compare_values(frozenset(answer.args), frozenset(reference.args), rel_tol, abs_tol))
    if isinstance(reference, sympy.MatrixBase) or isinstance(answer, sympy.MatrixBase):
        if not (isinstance(reference, sympy.MatrixBase) and isinstance(answer, sympy.MatrixBase)):
            return False
        if reference.shape != answer.shape:
            return False
        return all(compare_values(a, r, rel_tol, abs_tol) for a, r in zip(answer, reference, strict=True))
    if isinstance(reference, sympy.Tuple) or isinstance(answer, sympy.Tuple):
        if not (isinstance(reference, sympy.Tuple) and isinstance(answer, sympy.Tuple)):
            return False
        return bool(compare_values(tuple(answer), tuple(reference), rel_tol, abs_tol))
    if isinstance(reference, sympy.Expr) and isinstance(answer, sympy.Expr):
        if isinstance(reference, sympy.Eq) or isinstance(answer, sympy.Eq):
            return None
        return bool(compare_values(answer, reference, rel_tol, abs_tol))
    return None


def compare_structured(answer: str, reference: str, rel_tol: float, abs_tol: float) -> tuple[str, str | None, str]:
    """Compare two answer texts through math-verify's parser; same contract as ``compare_answers``."""
    try:
        reference_value = parse_structured(reference)
    except (AnswerParseError, RecursionError) as exc:
        return ERROR, None, f"the reference {reference[:80]!r} is not usable: {exc}"
    if reference_value is None:
        missing = "" if _mv_parse is not None else " (math-verify is not installed: pip install math-verify)"
        return ERROR, None, f"the reference {reference[:80]!r} could not be parsed by either parser{missing}"
    try:
        answer_value = parse_structured(answer)
    except AnswerParseError as exc:  # a guard refused it ("too large"): no second parser gets a go
        return PARSE_FAILED, None, str(exc)
    except RecursionError:
        return PARSE_FAILED, None, "the answer is nested too deeply to parse"
    if answer_value is None:
        return PARSE_FAILED, None, "the answer could not be parsed"
    # "y = 2x + 3" was normalised to its right-hand side; against an equation it is an equation.
    if isinstance(answer_value, sympy.Eq) and not isinstance(reference_value, sympy.Eq):
        try:
            raw_reference = parse_structured(reference, normalize=False)
        except (AnswerParseError, RecursionError):
            raw_reference = None
        reference_value = reference_value if raw_reference is None else raw_reference
    elif isinstance(reference_value, sympy.Eq) and not isinstance(answer_value, sympy.Eq):
        try:
            raw_answer = parse_structured(answer, normalize=False)
        except (AnswerParseError, RecursionError) as exc:
            return PARSE_FAILED, None, str(exc)
        answer_value = answer_value if raw_answer is None else raw_answer
    parsed = str(answer_value)[:200]
    try:
        verdict = structured_equal(answer_value, reference_value, rel_tol, abs_tol)
        if verdict is None:
            verdict = bool(_mv_verify([reference_value], [answer_value], timeout_seconds=None))
            method = "math-verify"
        else:
            method = "structured"
    except RecursionError:
        return PARSE_FAILED, parsed, "the answer is nested too deeply to compare"
    except Exception as exc:  # noqa: BLE001 - sympy can raise almost anything on odd input; fail closed
        return PARSE_FAILED, parsed, f"the answer could not be compared ({type(exc).__name__})"
    return (CORRECT if verdict else WRONG), parsed, method


def reference_problem(reference: str) -> str | None:
    """Why ``reference`` cannot serve as a reference answer (one sentence), or None if it can.

    A reference is usable when it is a text or choice answer, or either parser reads it.
    """
    if not reference.strip():
        return "the reference is empty"
    if text_answer(reference) is not None:
        return None
    try:
        parse_answer(reference)
        return None
    except (AnswerParseError, RecursionError, ValueError, TypeError, ZeroDivisionError) as exc:
        ours = str(exc)
        if "too large" in ours or "undefined" in ours:
            return f"it is not a usable value ({ours})"
    try:
        value = parse_structured(reference)
        if isinstance(value, sympy.Basic) and value.has(sympy.zoo, sympy.nan):
            return "it is undefined (division by zero?)"
        if value is not None:
            return None
    except Exception as exc:  # noqa: BLE001 - any failure of the second parser means unusable
        return f"neither parser reads it (ours: {ours}; math-verify: {type(exc).__name__})"
    return f"neither parser reads it (ours: {ours}; math-verify found no expression)"


def reference_problems(references: list[str]) -> list[str | None]:
    """:func:`reference_problem` for many references, in one worker round trip."""
    return [reference_problem(reference) for reference in references]
