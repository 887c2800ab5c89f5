"""Math answers: extract the final answer from a completion and decide if it equals a reference.

Two pure functions do the work:

- :func:`extract_answer` finds the final answer in free text (``\\boxed{}``, ``####``,
  "the answer is", or the last number; the order is configurable).
- :func:`check_math_answer` decides whether an extracted answer equals the reference, and
  :func:`verify_math_answer` does both and returns a :class:`~grpo_envs.verify.result.VerifyResult`.

Verification fails closed, in three layers:

1. Cheap checks in the caller's process: an answer longer than :data:`MAX_ANSWER_CHARS`,
   nested deeper than :data:`MAX_NESTING_DEPTH`, or holding control characters is
   ``parse_failed`` at once.
2. Plain numbers (``42``, ``-0.75``, ``3/4``, ``\\frac{3}{4}``, ``1,000``, ``$5``, ``50%``) are
   compared exactly with :class:`fractions.Fraction` in the caller's process: no sympy, no IPC.
3. Everything else is parsed and compared by sympy in a shared
   :class:`~grpo_envs.verify.worker.TimeoutWorker` process, one round trip per pair, under a
   hard wall-clock timeout that kills a hung computation (reason ``timeout``).

This module never imports sympy itself: the parser (:mod:`grpo_envs.verify.math_sympy`) is
imported in the worker, so creating an environment stays cheap.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Sequence
from fractions import Fraction

from grpo_envs.verify.result import CORRECT, ERROR, PARSE_FAILED, TIMEOUT, WRONG, VerifyResult
from grpo_envs.verify.worker import TimeoutWorker, WorkerError, WorkerTimeout

#: The extraction strategies, tried in this order by default. See :func:`extract_answer`.
STRATEGIES: tuple[str, ...] = ("boxed", "hash", "answer_is", "last_number")
DEFAULT_STRATEGIES: tuple[str, ...] = STRATEGIES

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

#: Answer text that is read as a plain number by the fast path (after :func:`normalize_answer`).
#: Scientific notation is left to the worker on purpose: ``Fraction("1e999999999")`` would
#: build a billion-digit integer in this process.
_PLAIN_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)")
_PLAIN_FRACTION = re.compile(r"([-+]?)(\d+)/(\d+)")
_LATEX_FRACTION = re.compile(r"([-+]?)\\[dt]?frac\{([-+]?\d+)\}\{(\d+)\}")
_THOUSANDS = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?|[-+]?\d{1,3}(?: \d{3})+(?:\.\d+)?")


# -- extraction ------------------------------------------------------------------------------

_BOXED = re.compile(r"\\(?:boxed|fbox)")
_HASH = re.compile(r"####")
_ANSWER_IS = re.compile(r"\b(?:final\s+answer|answer)\s*(?:is|:|=)\s*(?:equal\s+to\s*)?", re.IGNORECASE)
# A number in prose. A minus sign counts only when it is not a binary minus ("5-3" ends in 3).
_NUMBER_IN_TEXT = re.compile(r"(?:(?<![\w)\]])-)?(?:\d+(?:,\d{3})*(?:\.\d+)?|\.\d+)(?:/\d+)?%?")


def _braced(text: str, start: int) -> tuple[str, int] | None:
    """The content of the brace group opening at ``text[start] == '{'`` and the index after it."""
    depth, i = 0, start
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2  # an escaped character (\{, \}, or a command's first letter) never counts
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i], i + 1
        i += 1
    return None


def _extract_boxed(text: str) -> str | None:
    matches = list(_BOXED.finditer(text))
    for match in reversed(matches):  # the last complete \boxed{} is the final answer
        i = match.end()
        while i < len(text) and text[i] == " ":
            i += 1
        if i < len(text) and text[i] == "{":
            group = _braced(text, i)
            if group is not None:
                return group[0]
        elif i > match.end():  # "\boxed 5": LaTeX takes the next token
            token = re.match(r"[^\s$]+", text[i:])
            if token:
                return token.group(0)
    return None


def _extract_hash(text: str) -> str | None:
    positions = [m.end() for m in _HASH.finditer(text)]
    if not positions:
        return None
    rest = text[positions[-1] :].lstrip("# \t")
    line = rest.split("\n", 1)[0].strip()
    return line or None


def _cut_sentence(text: str) -> str:
    """The answer part of "the answer is ...": up to the end of the line or sentence."""
    text = text.strip()
    for opening, closing in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if text.startswith(opening):
            end = text.find(closing, len(opening))
            if end != -1:
                return text[len(opening) : end].strip()
    line = text.split("\n", 1)[0]
    sentence = re.split(r"\.(?:\s|$)", line, maxsplit=1)[0]  # "3.5 apples." keeps its decimal point
    return sentence.strip().rstrip("*_,;:!").strip()


def _extract_answer_is(text: str) -> str | None:
    matches = list(_ANSWER_IS.finditer(text))
    for match in reversed(matches):
        answer = _cut_sentence(text[match.end() :].lstrip("*_ "))
        if answer:
            return answer
    return None


def _extract_last_number(text: str) -> str | None:
    last = None
    for last in _NUMBER_IN_TEXT.finditer(text):
        pass
    return None if last is None else last.group(0)


_EXTRACTORS = {
    "boxed": _extract_boxed,
    "hash": _extract_hash,
    "answer_is": _extract_answer_is,
    "last_number": _extract_last_number,
}


def extract_answer_with_strategy(text: str, strategies: Sequence[str] = DEFAULT_STRATEGIES) -> tuple[str, str] | None:
    """Like :func:`extract_answer`, but also says which strategy found the answer.

    :returns: ``(answer, strategy)``, or None when no strategy finds anything.
    """
    for name in strategies:
        try:
            extractor = _EXTRACTORS[name]
        except KeyError:
            raise ValueError(f"unknown answer-extraction strategy {name!r}; use some of {STRATEGIES}") from None
        answer = extractor(text)
        if answer is not None and answer.strip():
            return answer.strip(), name
    return None


def extract_answer(text: str, strategies: Sequence[str] = DEFAULT_STRATEGIES) -> str | None:
    """The final answer written in ``text``, or None.

    Strategies, tried in the given order until one finds something:

    - ``"boxed"``: the content of the last complete ``\\boxed{...}`` (or ``\\fbox{...}``),
      nested braces included.
    - ``"hash"``: the rest of the line after the last ``####`` (GSM8K's format).
    - ``"answer_is"``: what follows the last "the answer is" / "final answer:", up to the end
      of the sentence or line (a ``$...$`` right after it is taken whole).
    - ``"last_number"``: the last number in the text (``-3``, ``1,000``, ``2.5``, ``3/4``, ``50%``).

    :param text: the completion.
    :param strategies: names from :data:`STRATEGIES`, in the order to try them.

    Example::

        >>> extract_answer("so x = 3, hence $\\\\boxed{\\\\frac{3}{4}}$")
        '\\\\frac{3}{4}'
        >>> extract_answer("She pays 5 + 7 = 12 dollars.\\n#### 12")
        '12'
        >>> extract_answer("I think the answer is 7.")
        '7'
        >>> extract_answer("no idea", strategies=["boxed"]) is None
        True
    """
    found = extract_answer_with_strategy(text, strategies)
    return None if found is None else found[0]


# -- normalisation (string level, shared by the fast path and the sympy parser) ---------------

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
_SIZING = re.compile(r"\\(?:left|right|big|Big|bigg|Bigg|displaystyle|textstyle)(?![a-zA-Z])")
_SPACING = re.compile(r"\\(?:quad|qquad)(?![a-zA-Z])|\\[,;:! ]|~")
_TEXT_WRAPPERS = re.compile(r"\\(?:text|textbf|textrm|textit|mathrm|mathbf|mathit|mbox|operatorname)\s*\{([^{}]*)\}")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\circ|\\degree")
# "x = 5", "a_1 = 5", "f(2) = 5": keep the right-hand side.
_ASSIGNMENT = re.compile(r"^\s*[A-Za-z](?:_\{?\w+\}?)?(?:\([^()=]*\))?\s*=\s*(?P<rhs>[^=]+)$")
# "18 dollars", "5 cm": a number followed, after a space, by words. Known function and constant
# names are not units ("2 pi").
_NUMBER_WITH_UNIT = re.compile(r"^(?P<number>[-+]?[\d.,/]+%?)\s+(?P<unit>[A-Za-z][A-Za-z. ]*)$")
_NOT_UNITS = {"pi", "sqrt", "sin", "cos", "tan", "log", "ln", "exp", "oo", "i", "e"}


def normalize_answer(text: str) -> str:
    """Rewrite an answer into a canonical surface form; no parsing, no evaluation.

    Removes math delimiters (``$``, ``\\(...\\)``), currency signs, ``\\left``/``\\right``
    and spacing commands, unwraps ``\\text{...}``, drops degree signs, a trailing full stop,
    a ``x =`` prefix and trailing unit words (``18 dollars``), turns ``\\%`` into ``%``, Unicode
    math signs (``−``, ``×``, ``π``, ``√``) into ASCII/LaTeX, and removes thousands separators
    from a plain number (``1,000`` or ``1{,}000``). Linear in the length of ``text``.

    Example::

        >>> normalize_answer("$\\\\$1{,}000.$")
        '1000'
        >>> normalize_answer("x = \\\\left(\\\\frac{1}{2}\\\\right)")
        '(\\\\frac{1}{2})'
    """
    s = text.strip()
    s = _UNICODE_RE.sub(lambda m: _UNICODE[m.group(0)], s)
    s = s.replace("\\$", "").replace("$", "").replace("\\(", "").replace("\\)", "")
    s = s.replace("\\[", "").replace("\\]", "").replace("\\%", "%").replace("{,}", ",")
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("\\cfrac", "\\frac")
    s = _SPACING.sub(" ", _SIZING.sub("", s))
    for _ in range(3):  # \text{\textbf{5}}: a few levels, no more (bounded work)
        s = _TEXT_WRAPPERS.sub(r" \1 ", s)
    s = _DEGREES.sub("", s)
    s = s.strip().rstrip(".").strip()
    assignment = _ASSIGNMENT.match(s)
    if assignment:
        s = assignment.group("rhs").strip()
    unit = _NUMBER_WITH_UNIT.match(s)
    if unit and not (set(unit.group("unit").lower().replace(".", " ").split()) & _NOT_UNITS):
        s = unit.group("number")
    s = re.sub(r"\s+", " ", s)
    body = s[:-1] if s.endswith("%") else s
    if _THOUSANDS.fullmatch(body):
        s = s.replace(",", "").replace(" ", "")
    return s.strip()


_GROUPED_SUM = re.compile(r"[(\[]|\{[^{}]*[-+][^{}]*\}")


def is_expanded(answer: str) -> bool:
    """Whether ``answer`` is written without grouped sums: ``x^2+2x+1`` is, ``(x+1)^2`` and
    ``{x+1}^2`` are not. Used for tasks that ask to *expand* (equality alone would accept the
    question's own product).
    """
    return _GROUPED_SUM.search(normalize_answer(answer)) is None


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
            sign, numerator, denominator = match.groups()
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
        if abs(a - b) <= max(Fraction(rel_tol) * max(abs(a), abs(b)), Fraction(abs_tol)):
            return True
    return False


# -- the shared worker ------------------------------------------------------------------------

_worker: TimeoutWorker | None = None
_worker_lock = threading.Lock()


def get_math_worker() -> TimeoutWorker:
    """The process-wide worker that runs sympy (started lazily, with sympy preloaded)."""
    global _worker
    with _worker_lock:
        if _worker is None:
            _worker = TimeoutWorker(preload=("sympy", "grpo_envs.verify.math_sympy"))
        return _worker


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
    :returns: a :class:`VerifyResult` with ``parsed=answer`` and ``details`` holding
        ``method`` (``fast | exact | numeric | none``) and, on failure, ``message``.

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
    fast_answer = parse_plain_number(normalize_answer(answer))
    fast_reference = parse_plain_number(normalize_answer(reference))
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
