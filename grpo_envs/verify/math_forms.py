"""The shape of an answer, read from its text alone: text and multiple-choice answers, lists, hedges.

Everything here is string work in the caller's process (no sympy), linear in the answer's length:

- :func:`text_answer` recognises answers that are words (``\\text{odd}``, ``Evelyn``) or a
  multiple-choice letter (``(B)``, ``\\textbf{(C)}``); those are compared as text, never as a
  product of symbols (``odd`` is not ``o*d*d``).
- :func:`split_top_level` splits at commas outside brackets (``(1, 2), 3`` has two parts).
- :func:`offers_several` says whether an answer offers several candidates (a list, ``\\pm``,
  ``\\approx``, a set, an interval, a relation): against a single-valued reference such an
  answer is wrong, whatever its candidates are, so that hedging never pays.
"""

from __future__ import annotations

import re

_WRAPPER = re.compile(
    r"\\(?:text|textbf|textrm|textit|textsf|texttt|mathrm|mathbf|mathit|mathsf|mbox|emph)\s*\{([^{}]*)\}"
)
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?:\s*([AaPp])\.?\s*[Mm]\.?)?")
_CHOICE = re.compile(r"\(?\s*([A-E])\s*\)?")
_CHOICE_ANSWER = re.compile(r"\(?\s*([A-E])\s*\)?(?:$|[\s.:,;])")
_ANOTHER_CHOICE = re.compile(r"(?<![A-Za-z\\])[A-E](?![A-Za-z])")
_WORDS = re.compile(r"[A-Za-z][A-Za-z'\-]*(?:\s+[A-Za-z][A-Za-z'\-]*)*")
#: Names that are mathematics, not prose: "pi" or "sin x" is parsed, never compared as text.
_MATH_NAMES = "pi sin cos tan cot sec csc log ln exp sqrt infty inf infinity oo arcsin arccos arctan sinh cosh tanh"
MATH_WORDS = frozenset(_MATH_NAMES.split(" "))
_HEDGES = re.compile(
    r"\\(?:pm|mp|approx|sim|simeq|cup|cap|le|leq|ge|geq|lt|gt|neq|ne|ldots|cdots|dots|in|subset|subseteq)(?![A-Za-z])"
    r"|[<>\u00b1\u2248\u2264\u2265\u2260]|\\\{|\+/-|\.\.\."
)
_OPEN, _CLOSE = "([{", ")]}"


def _strip_math(text: str) -> str:
    s = text.strip().strip("$").strip()
    for opening, closing in (("\\(", "\\)"), ("\\[", "\\]")):
        if s.startswith(opening) and s.endswith(closing):
            s = s[len(opening) : -len(closing)].strip()
    return s


def text_answer(text: str) -> str | None:
    """A canonical text form if ``text`` is a text or multiple-choice answer, else None.

    Text answers are words wrapped in ``\\text{}`` (or ``\\textbf{}``, ``\\mathrm{}``, ...), or
    bare words of three letters or more that are not math names; a time of day (``12:00``,
    ``2:30 p.m.``) is text too. Choices are one letter A-E,
    bracketed or not. The canonical form is lower case with single spaces (``choice:b`` for a
    choice), so ``\\text{Odd}`` and ``odd`` compare equal.

    Example::

        >>> text_answer("\\\\text{ odd }"), text_answer("\\\\textbf{(B)}"), text_answer("x+1")
        ('odd', 'choice:b', None)
    """
    s = _strip_math(text)
    wrapped = bool(_WRAPPER.search(s))
    for _ in range(3):
        s = _WRAPPER.sub(r" \1 ", s)
    s = re.sub(r"\s+", " ", s).strip().rstrip(".").strip()
    clock = _CLOCK.fullmatch(s)
    if clock:  # "2:30 p.m." is a time of day, not the ratio 2/30
        hours, minutes, half = clock.groups()
        return f"time:{int(hours)}:{minutes}" + (f" {half[0].lower()}m" if half else "")
    if _CHOICE.fullmatch(s):
        return "choice:" + _CHOICE.fullmatch(s).group(1).lower()  # type: ignore[union-attr]
    if not _WORDS.fullmatch(s):
        return None
    words = s.lower().split()
    if any(word in MATH_WORDS for word in words):
        return None
    if wrapped and any(len(word) >= 2 for word in words):
        return " ".join(words)
    if all(len(word) >= 3 for word in words) and any(c in "aeiouy" for c in s.lower()):
        return " ".join(words)
    return None


def choice_of(answer: str) -> str | None:
    """The choice letter an answer starts with (``(B) 12`` -> ``choice:b``), or None."""
    s = _strip_math(answer)
    for _ in range(3):
        s = _WRAPPER.sub(r" \1 ", s)
    match = _CHOICE_ANSWER.match(s.strip())
    if match is None or _ANOTHER_CHOICE.search(s.strip()[match.end() :]):
        return None  # "B or C", "(B) and (D)": several choices are a hedge
    return "choice:" + match.group(1).lower()


def split_top_level(text: str, separators: str = ",;") -> list[str]:
    """``text`` split at ``separators`` that are outside every bracket (``\\{``, ``\\left(`` count too)."""
    parts, depth, start = [], 0, 0
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in "{}":
            depth += 1 if text[i + 1] == "{" else -1
            i += 2
            continue
        if char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth -= 1
        elif char in separators and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _unwrap_brackets(text: str) -> str:
    """``text`` without one pair of outer brackets that encloses all of it."""
    s = text.strip()
    if len(s) >= 2 and s[0] in "([" and s[-1] in ")]":
        depth = 0
        for i, char in enumerate(s):
            depth += char in _OPEN
            depth -= char in _CLOSE
            if depth == 0 and i < len(s) - 1:
                return s  # "(1)(2)": the first bracket closes early
        return s[1:-1]
    return s


def offers_several(normalised: str) -> bool:
    """Whether a normalised answer offers several candidates (see the module docstring).

    Example::

        >>> [offers_several(a) for a in ["10", "10, 11", "10 \\\\pm 1", "(9, 11)", "\\\\approx 10", "x^2+1"]]
        [False, True, True, True, True, False]
    """
    s = normalised
    if _HEDGES.search(s) or "\\begin" in s:
        return True
    if s.count("=") > 1:
        return True
    return len(split_top_level(_unwrap_brackets(s))) > 1
