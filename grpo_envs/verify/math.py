"""Math answers: extract the final answer from a completion and decide if it equals a reference.

The public entry is :func:`verify_math_answer` (extract, then check); :func:`check_math_answer`
checks an already-extracted answer. Extraction lives in :mod:`grpo_envs.verify.math_extract`,
surface normalisation in :mod:`grpo_envs.verify.math_normalize`, answer shapes (text, choices,
hedges) in :mod:`grpo_envs.verify.math_forms`; all are re-exported here.

Verification fails closed, in layers, cheapest first:

1. Cheap checks in the caller's process: an answer longer than :data:`MAX_ANSWER_CHARS`,
   nested deeper than :data:`MAX_NESTING_DEPTH`, or holding control characters is
   ``parse_failed`` at once.
2. Text and multiple-choice references (``\\text{odd}``, ``(B)``) are compared as text.
3. Hedges: against a single-valued reference, an answer that offers several candidates
   (``10, 11``, ``10 \\pm 1``, ``\\approx 10``, an interval, a set) is ``wrong``.
4. Plain numbers (``42``, ``-0.75``, ``3/4``, ``\\frac{3}{4}``, ``1,000``, ``$5``, ``50%``) are
   compared exactly with :class:`fractions.Fraction` in the caller's process: no sympy, no IPC.
5. Everything else goes to a shared :class:`~grpo_envs.verify.worker.TimeoutWorker` process, one
   round trip per pair, under a hard wall-clock timeout that kills a hung computation (reason
   ``timeout``): our own parser and sympy first (:mod:`grpo_envs.verify.math_sympy`), then
   math-verify's parser for what ours does not read (intervals, matrices, equations, ...; see
   :mod:`grpo_envs.verify.math_structured`).

This module never imports sympy or math-verify: both are imported in the worker only, so
creating an environment stays cheap.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Sequence
from fractions import Fraction

from grpo_envs.lazy_singleton import LazySingleton
from grpo_envs.verify.math_extract import (
    DEFAULT_STRATEGIES,
    STRATEGIES,
    extract_answer,
    extract_answer_with_strategy,
)
from grpo_envs.verify.math_forms import choice_of, offers_several, split_top_level, text_answer
from grpo_envs.verify.math_normalize import is_expanded, normalize_answer
from grpo_envs.verify.result import CORRECT, ERROR, PARSE_FAILED, TIMEOUT, WRONG, VerifyResult
from grpo_envs.verify.worker import TimeoutWorker, WorkerError, WorkerTimeout

__all__ = [
    "DEFAULT_STRATEGIES",
    "STRATEGIES",
    "check_math_answer",
    "extract_answer",
    "extract_answer_with_strategy",
    "get_math_worker",
    "is_expanded",
    "normalize_answer",
    "numbers_match",
    "parse_plain_number",
    "precheck_answer",
    "verify_math_answer",
]


#: Seconds one sympy comparison may take before the worker is killed (reason ``timeout``).
#: Honest answers of the built-in tasks take a few milliseconds; MATH-style symbolic answers
#: rarely more than 0.2 s.
DEFAULT_TIMEOUT = 2.0

#: Relative tolerance of the numeric comparison: 0.3333333 equals 1/3, 0.333 does not.
#: It never applies between two integers (1000001 is not 1000000).
DEFAULT_REL_TOL = 1e-6
#: Absolute tolerance, for answers near zero.
DEFAULT_ABS_TOL = 1e-9

#: Longest extracted answer that is parsed at all. Real final answers are short; a long one is
#: a policy trying to buy verifier time (or a rambling completion with no answer).
MAX_ANSWER_CHARS = 1000
#: Deepest bracket nesting that is parsed: hand-written answers rarely exceed 5 levels, and the
#: recursive-descent parser must stay far from Python's recursion limit.
MAX_NESTING_DEPTH = 50

#: Most forms of one value an answer may list ("15\\frac{39}{40}, or \\frac{639}{40}") and still
#: score: every form must equal the reference, so listing is never a hedge.
MAX_EQUAL_FORMS = 4

#: Answer text that is read as a plain number by the fast path (after :func:`normalize_answer`).
#: Scientific notation is left to the worker on purpose: ``Fraction("1e999999999")`` would
#: build a billion-digit integer in this process.
_PLAIN_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)")
_PLAIN_FRACTION = re.compile(r"([-+]?)(\d+)/(\d+)")
# \\frac{3}{4}, and the brace-less spellings LaTeX accepts: \\frac34, \\frac3{4}, \\frac{3}4.
_LATEX_FRACTION = re.compile(r"([-+]?)\\frac\s*(?:\{([-+]?\d+)\}|(\d))\s*(?:\{(\d+)\}|(\d))")

# -- cheap checks and the plain-number fast path ----------------------------------------------


def _nesting_depth(text: str) -> int:
    depth = deepest = 0
    for char in text:
        if char in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]}":
            depth -= 1
    return deepest


def precheck_answer(answer: str) -> str | None:
    """Why ``answer`` is refused before any parsing (a one-sentence message), or None if it may be parsed."""
    if len(answer) > MAX_ANSWER_CHARS:
        return f"answer has {len(answer)} characters; answers longer than {MAX_ANSWER_CHARS} are not parsed"
    for char in answer:
        if unicodedata.category(char) == "Cc" and char not in "\t\n\r":
            return f"answer contains the control character {char!r}"
    depth = _nesting_depth(answer)
    if depth > MAX_NESTING_DEPTH:
        return f"answer nests brackets {depth} deep; the limit is {MAX_NESTING_DEPTH}"
    return None


def parse_plain_number(text: str) -> tuple[Fraction, bool] | None:
    """``(value, is_percent)`` if the normalised ``text`` is a plain number, else None.

    Plain numbers: integers, decimals, ``a/b``, ``\\frac{a}{b}``, each optionally signed and
    followed by ``%``. Anything else (``1e5``, ``\\sqrt{2}``, ``2x``) returns None.
    """
    percent = text.endswith("%")
    body = text[:-1].strip() if percent else text
    if _PLAIN_NUMBER.fullmatch(body):
        return Fraction(body), percent
    for pattern in (_PLAIN_FRACTION, _LATEX_FRACTION):
        match = pattern.fullmatch(body)
        if match:
            sign, *digits = match.groups()
            numerator, denominator = [d for d in digits if d is not None]
            if int(denominator) == 0:
                return None  # undefined: let the sympy path report it
            value = Fraction(int(numerator), int(denominator))
            return (-value if sign == "-" else value), percent
    return None


def numbers_match(
    answer: Fraction,
    answer_percent: bool,
    reference: Fraction,
    reference_percent: bool,
    rel_tol: float = DEFAULT_REL_TOL,
    abs_tol: float = DEFAULT_ABS_TOL,
) -> bool:
    """The number-equality policy, shared by the fast path and the sympy path.

    - Exact equality first; the tolerance applies only if one side is not an integer.
    - A percent sign on one side only: ``x%`` equals ``x`` and ``x/100`` (the reference
      ``50`` accepts ``50%``, the reference ``0.5`` accepts ``50%``). On both sides, or on
      neither, the numbers are compared as written (``50%`` is not ``0.5%``).
    """
    if answer_percent == reference_percent:
        candidates = [(answer, reference)]
    elif answer_percent:
        candidates = [(answer, reference), (answer / 100, reference)]
    else:
        candidates = [(answer, reference), (answer, reference / 100)]
    for a, b in candidates:
        if a == b:
            return True
        if a.denominator == 1 and b.denominator == 1:
            continue
        if a == 0 or b == 0:  # abs_tol only next to zero: 1/2004! is not 1/2006!, however small both are
            if abs(a - b) <= Fraction(abs_tol):
                return True
        elif abs(a - b) <= Fraction(rel_tol) * max(abs(a), abs(b)):
            return True
    return False


# -- the shared worker ------------------------------------------------------------------------

_worker = LazySingleton(
    lambda: TimeoutWorker(preload=("sympy", "grpo_envs.verify.math_sympy", "grpo_envs.verify.math_structured"))
)


def get_math_worker() -> TimeoutWorker:
    """The process-wide worker that runs sympy (started lazily, with sympy preloaded)."""
    return _worker.get()


def _compare_in_worker(answer: str, reference: str, rel_tol: float, abs_tol: float) -> tuple[str, str | None, str]:
    """Runs inside the worker: the sympy comparison of one pair, in one round trip."""
    from grpo_envs.verify.math_sympy import compare_answers  # imported in the worker only

    return compare_answers(answer, reference, rel_tol, abs_tol)


# -- verification -----------------------------------------------------------------------------


def check_math_answer(
    answer: str,
    reference: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    rel_tol: float = DEFAULT_REL_TOL,
    abs_tol: float = DEFAULT_ABS_TOL,
    worker: TimeoutWorker | None = None,
) -> VerifyResult:
    """Decide whether an already-extracted ``answer`` equals ``reference``.

    Equal means: the same plain number (:func:`numbers_match`), or sympy proves the
    difference is zero (``exact``), or the two agree numerically within ``rel_tol`` (at a few
    fixed points for each free symbol: ``numeric``). Tuples are compared element by element.

    :param answer: the answer text (plain or LaTeX), e.g. from :func:`extract_answer`.
    :param reference: the reference answer text.
    :param timeout: wall-clock seconds for the sympy comparison; past it the worker is killed
        and the verdict is ``timeout``.
    :param rel_tol: relative tolerance of numeric comparisons (never between two integers).
    :param abs_tol: absolute tolerance, for values near zero.
    :param worker: the :class:`~grpo_envs.verify.worker.TimeoutWorker` to use; the shared one
        (:func:`get_math_worker`) by default.
    :returns: a :class:`VerifyResult` with ``parsed=answer`` and ``details`` holding ``method``
        (``fast | exact | numeric | text | hedge | structured | math-verify | none``) and, on
        failure, ``message``.

    Example::

        >>> check_math_answer("0.75", "\\\\frac{3}{4}").reason
        'correct'
        >>> check_math_answer("(x+1)^2", "x^2+2x+1").details["method"]
        'exact'
    """
    if not isinstance(answer, str) or not isinstance(reference, str):
        raise TypeError(f"answer and reference must be str, got {type(answer).__name__} and {type(reference).__name__}")
    refused = precheck_answer(answer)
    if refused is not None:
        return VerifyResult.fail(PARSE_FAILED, parsed=answer[:200], method="none", message=refused)
    reference_text = text_answer(reference)
    if reference_text is not None:  # words or a choice letter: compared as text, never parsed
        answer_text = choice_of(answer) if reference_text.startswith("choice:") else text_answer(answer)
        if answer_text == reference_text:
            return VerifyResult.success(parsed=answer, method="text")
        return VerifyResult.fail(WRONG, parsed=answer, method="text")
    normal_answer, normal_reference = normalize_answer(answer), normalize_answer(reference)
    if offers_several(normal_answer) and not offers_several(normal_reference):
        parts = split_top_level(normal_answer)
        if 1 < len(parts) <= MAX_EQUAL_FORMS and not any(offers_several(part) for part in parts):
            # "15\frac{39}{40}, or \frac{639}{40}": the same value written twice is no hedge.
            # The forms share one deadline, so listing them buys no verifier time.
            deadline = time.monotonic() + timeout
            for part in parts:
                left = deadline - time.monotonic()
                if left <= 0:
                    return VerifyResult.fail(TIMEOUT, parsed=answer, method="none", message=f"took over {timeout} s")
                verdict = check_math_answer(
                    part, reference, timeout=left, rel_tol=rel_tol, abs_tol=abs_tol, worker=worker
                )
                if not verdict.correct:
                    break
            else:
                return VerifyResult.success(parsed=answer, method=verdict.details.get("method", "fast"))
        return VerifyResult.fail(
            WRONG,
            parsed=answer,
            method="hedge",
            message="the answer offers several candidates; the reference is one value",
        )
    fast_answer = parse_plain_number(normal_answer)
    fast_reference = parse_plain_number(normal_reference)
    if fast_answer is not None and fast_reference is not None:
        if numbers_match(*fast_answer, *fast_reference, rel_tol=rel_tol, abs_tol=abs_tol):
            return VerifyResult.success(parsed=answer, method="fast")
        return VerifyResult.fail(WRONG, parsed=answer, method="fast")
    worker = worker if worker is not None else get_math_worker()
    try:
        reason, _, method_or_message = worker.call(
            _compare_in_worker, answer, reference, float(rel_tol), float(abs_tol), timeout=timeout
        )
    except WorkerTimeout:
        return VerifyResult.fail(
            TIMEOUT, parsed=answer, method="none", message=f"sympy took longer than {timeout} s and was stopped"
        )
    except MemoryError:
        return VerifyResult.fail(
            PARSE_FAILED, parsed=answer, method="none", message="the answer exhausted the verifier's memory limit"
        )
    except WorkerError as exc:
        return VerifyResult.fail(ERROR, parsed=answer, method="none", message=str(exc).strip().splitlines()[-1])
    if reason == CORRECT:
        return VerifyResult.success(parsed=answer, method=method_or_message)
    if reason == WRONG:
        return VerifyResult.fail(WRONG, parsed=answer, method=method_or_message)
    return VerifyResult.fail(reason, parsed=answer, method="none", message=method_or_message)


def verify_math_answer(
    completion: str,
    reference: str,
    *,
    strategies: Sequence[str] = DEFAULT_STRATEGIES,
    timeout: float = DEFAULT_TIMEOUT,
    rel_tol: float = DEFAULT_REL_TOL,
    abs_tol: float = DEFAULT_ABS_TOL,
    worker: TimeoutWorker | None = None,
) -> VerifyResult:
    """Extract the final answer from ``completion`` and check it against ``reference``.

    Never raises for a ``str`` completion: every failure is a zero-reward verdict with a
    reason (``wrong``, ``parse_failed`` when no answer is found or it cannot be parsed,
    ``timeout``, or ``error`` when the *reference* cannot be parsed).

    :param completion: the policy's full completion.
    :param reference: the reference answer (plain text or LaTeX, e.g. ``"3/4"``).
    :param strategies: extraction strategies, see :func:`extract_answer`.
    :param timeout: see :func:`check_math_answer`.
    :param rel_tol: see :func:`check_math_answer`.
    :param abs_tol: see :func:`check_math_answer`.
    :param worker: see :func:`check_math_answer`.

    Example::

        >>> r = verify_math_answer("7 * 8 = 56, so the answer is $\\\\boxed{56}$.", "56")
        >>> (r.reward, r.reason, r.parsed, r.details["strategy"])
        (1.0, 'correct', '56', 'boxed')
        >>> verify_math_answer("I give up", "56", strategies=["boxed"]).reason
        'parse_failed'
    """
    if not isinstance(completion, str):
        raise TypeError(f"completion must be a str, got {type(completion).__name__}; decode it to text first")
    found = extract_answer_with_strategy(completion, strategies)
    if found is None:
        return VerifyResult.fail(
            PARSE_FAILED,
            parsed=None,
            strategy=None,
            method="none",
            message=f"no final answer found (strategies tried: {', '.join(strategies)})",
        )
    answer, strategy = found
    result = check_math_answer(answer, reference, timeout=timeout, rel_tol=rel_tol, abs_tol=abs_tol, worker=worker)
    return VerifyResult(
        reward=result.reward,
        correct=result.correct,
        reason=result.reason,
        parsed=result.parsed,
        details={"strategy": strategy, **result.details},
    )
