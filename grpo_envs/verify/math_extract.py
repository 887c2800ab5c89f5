"""Find the final answer in a free-text math completion.

Strategies, tried in a configurable order (:data:`DEFAULT_STRATEGIES`) until one finds something:

- ``"boxed"``: the last ``\\boxed{...}`` (or ``\\fbox{...}``). Several boxes that close the text
  together (``\\boxed{2} and \\boxed{3}``) are read as one list, ``2, 3``: a list is then matched
  as a whole, so boxing several candidates never pays against a single-valued reference.
  Boxes followed by "the final answer is ..." were intermediate steps: that statement wins.
- ``"math_env"``: the content of the last math environment (``$...$``, ``$$...$$``,
  ``\\(...\\)``, ``\\[...\\]``), unless the text states its answer in words ("the answer is",
  "final answer:", anywhere: models often ramble on after "The final answer is $X$"), or
  ``####`` or a computed ``= 7`` follows the environment. ``$`` pairs stay on one line, are
  not followed by a digit and hold no prose words, so prices (``$5 and $7``) are not math.
- ``"answer_is"``: what follows the last "the answer is" / "final answer:" up to the end of
  the sentence or line (a ``$...$`` right after it is taken whole); in a prose sentence, the
  value it states ("The volume of $ABCD$ is 120" -> ``120``), unless it names several
  ("10 or 11", "between 12 and 13" are kept whole, and judged as hedges).
- ``"hash"``: the rest of the line after the last ``####`` (GSM8K).
- ``"last_number"``: the last number in the text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

#: The extraction strategies, in the default order. See :func:`extract_answer`.
STRATEGIES: tuple[str, ...] = ("boxed", "math_env", "answer_is", "hash", "last_number")
DEFAULT_STRATEGIES: tuple[str, ...] = STRATEGIES

#: Two boxes belong to one final answer when at most this many characters, none of them a
#: blank line, separate them (``\boxed{2}, \boxed{3}``, ``\boxed{2} \text{ or } \boxed{3}``).
MAX_GAP_BETWEEN_BOXES = 80

_BOXED = re.compile(r"\\(?:boxed|fbox)")
_HASH = re.compile(r"####")
_FINAL_ANSWER = re.compile(r"\bfinal\s+answer\s*(?:is|:)", re.IGNORECASE)
_ANSWER_IS = re.compile(r"\b(?:final\s+answer|answer)\s*(?:is|:|=)\s*(?:equal\s+to\s*)?", re.IGNORECASE)
# A number in prose. A minus sign counts only when it is not a binary minus ("5-3" ends in 3).
_NUMBER_IN_TEXT = re.compile(r"(?<![A-Za-z_])(?:(?<![\w)\]])-)?(?:\d+(?:,\d{3})*(?:\.\d+)?|\.\d+)(?:/\d+)?%?")
# Display environments first: "$$" must not be read as an empty "$...$".
_DISPLAY = re.compile(r"\$\$(.+?)\$\$|\\\[(.+?)\\\]", re.DOTALL)
_INLINE_PAREN = re.compile(r"\\\((.+?)\\\)")
# Prose inside "$...$" means the dollars were prices ("$5 and $7"), not math.
_PROSE_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}")
_TEXT_GROUP = re.compile(r"\\(?:text\w*|mbox|mathrm|operatorname|begin|end)\s*\{[^{}]*\}")
# A computed result in prose after the last formula ("so the total is 5 + 2 = 7").
_RESULT_IN_PROSE = re.compile(r"=\s*-?\d")


def braced(text: str, start: int) -> tuple[str, int] | None:
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


def _boxes(text: str) -> list[tuple[str, int, int]]:
    """Every complete box as ``(content, start, end)``, in order."""
    found = []
    for match in _BOXED.finditer(text):
        i = match.end()
        while i < len(text) and text[i] == " ":
            i += 1
        if i < len(text) and text[i] == "{":
            group = braced(text, i)
            if group is not None:
                found.append((group[0], match.start(), group[1]))
        elif i > match.end():  # "\boxed 5": LaTeX takes the next token
            token = re.match(r"[^\s$]+", text[i:])
            if token:
                found.append((token.group(0), match.start(), i + token.end()))
    return found


def _extract_boxed(text: str) -> str | None:
    boxes = _boxes(text)
    if not boxes or _FINAL_ANSWER.search(text, boxes[-1][2]):
        return None  # "... \\boxed{255} ... The final answer is $10,455$": the boxes were steps
    group = [boxes[-1]]
    for box in reversed(boxes[:-1]):
        gap = text[box[2] : group[0][1]]
        if len(gap) > MAX_GAP_BETWEEN_BOXES or "\n\n" in gap:
            break
        group.insert(0, box)
    contents: list[str] = []
    for content, _, _ in group:
        if content.strip() not in contents:  # the same answer boxed twice is one answer
            contents.append(content.strip())
    return ", ".join(contents)


def _inline_dollars(text: str) -> list[tuple[int, int, str]]:
    """``$...$`` spans on one line, paired left to right; a pair holding prose is two prices."""
    dollars = [m.start() for m in re.finditer(r"(?<!\\)\$", text)]
    spans, k = [], 0
    while k + 1 < len(dollars):
        start, end = dollars[k], dollars[k + 1]
        content = text[start + 1 : end]
        closes_before_digit = end + 1 < len(text) and text[end + 1].isdigit()
        if "\n" in content or closes_before_digit or _PROSE_WORD.search(_TEXT_GROUP.sub("", content)):
            k += 1  # the opening "$" was a price sign: try the next one as an opening
            continue
        spans.append((start, end + 1, content))
        k += 2
    return spans


def _extract_math_env(text: str) -> str | None:
    spans: list[tuple[int, int, str]] = []
    for pattern in (_DISPLAY, _INLINE_PAREN):
        for match in pattern.finditer(text):
            content = next(g for g in match.groups() if g is not None)
            spans.append((match.start(), match.end(), content))
    masked = _DISPLAY.sub(lambda m: " " * len(m.group(0)), text)
    spans.extend(_inline_dollars(masked))
    spans = [s for s in spans if s[2].strip()]
    if not spans:
        return None
    _, end, content = max(spans, key=lambda s: s[1])
    after = text[end:]
    if _ANSWER_IS.search(text) or _HASH.search(after) or _RESULT_IN_PROSE.search(after):
        return None  # the answer is stated in prose after the last formula: let those strategies read it
    return content.strip()


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


def _value_in_sentence(sentence: str) -> str:
    """``The volume of $ABCD$ is 120`` -> ``120``: the value a prose sentence states, if it is one."""
    prose = _strip_math_spans(sentence)
    if not _PROSE_WORD.search(_TEXT_GROUP.sub("", prose)) or _VALUE_WITH_UNITS.fullmatch(sentence.strip()):
        return sentence  # no prose ("x = 3", "\\frac{1}{2}"), or a value with its units ("3.5 apples")
    if re.search(r"\b(?:or|and|between|either)\b", prose):
        return sentence  # "10 or 11", "between 12 and 13": several candidates, left whole to be judged
    tail = re.split(r"\s(?:is|are|equals|was|be)\s|=", sentence)[-1].strip()
    if tail != sentence.strip() and not _PROSE_WORD.search(_strip_math_spans(tail)):
        return tail.strip("$ ")
    spans, numbers = _inline_dollars(sentence), _NUMBER_IN_TEXT.findall(prose)
    if len(spans) + len(numbers) == 1:  # exactly one value in the sentence: that is the answer
        return spans[0][2].strip() if spans else numbers[0]
    return sentence


_VALUE_WITH_UNITS = re.compile(r"[-+$]?[\d.,/]+%?\s+[A-Za-z][A-Za-z ]*")


def _strip_math_spans(text: str) -> str:
    return re.sub(r"\$[^$]*\$", " ", text)


def _extract_answer_is(text: str) -> str | None:
    matches = list(_ANSWER_IS.finditer(text))
    for match in reversed(matches):
        answer = _cut_sentence(text[match.end() :].lstrip("*_ "))
        if answer:
            return _value_in_sentence(answer)
    return None


#: A completion this short with no prose at all is read whole ("\\frac{10}{9}") before its last number.
MAX_BARE_FORMULA_CHARS = 100


def _extract_last_number(text: str) -> str | None:
    bare = text.strip()
    if (
        "\\" in bare
        and len(bare) <= MAX_BARE_FORMULA_CHARS
        and not _BOXED.search(bare)  # a malformed box is never guessed
        and bare.count("{") == bare.count("}")
        and not _PROSE_WORD.search(_TEXT_GROUP.sub("", bare))
    ):
        return bare
    numbers = _NUMBER_IN_TEXT.findall(text)
    return numbers[-1] if numbers else None


_EXTRACTORS = {
    "boxed": _extract_boxed,
    "math_env": _extract_math_env,
    "answer_is": _extract_answer_is,
    "hash": _extract_hash,
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
    """The final answer written in ``text``, or None (strategies in the module docstring).

    :param text: the completion.
    :param strategies: names from :data:`STRATEGIES`, in the order to try them.

    Example::

        >>> extract_answer("so x = 3, hence $\\\\boxed{\\\\frac{3}{4}}$")
        '\\\\frac{3}{4}'
        >>> extract_answer("x is \\\\boxed{2} or \\\\boxed{3}")
        '2, 3'
        >>> extract_answer("so $k = \\\\frac{1}{3}$.")
        'k = \\\\frac{1}{3}'
        >>> extract_answer("She pays 5 + 7 = 12 dollars.\\n#### 12")
        '12'
        >>> extract_answer("I think the answer is 7.")
        '7'
        >>> extract_answer("no idea", strategies=["boxed"]) is None
        True
    """
    found = extract_answer_with_strategy(text, strategies)
    return None if found is None else found[0]
