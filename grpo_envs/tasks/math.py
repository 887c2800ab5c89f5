"""Math tasks: a seeded procedural generator with difficulty levels, and GSM8K/MATH loaders.

:class:`ProceduralMathTasks` is an indexable :class:`~grpo_envs.tasks.base.TaskSource` of fixed
size: task ``k`` is a pure function of ``(seed, split, k)``. Its ``train`` and ``test`` splits
never share a question, for any seeds: a question belongs to the split chosen by a hash of its
text (:func:`split_of`), and each split's generator draws until it finds one of its own.

Levels (the reference answers are strings the verifier reads, e.g. ``"-3"``, ``"5/6"``):

- level 1: one operation on small integers (``What is 7 + 5?`` -> ``12``);
- level 2: two or three operations with precedence and brackets (``-17``);
- level 3: one operation on two fractions, answer in lowest terms (``5/6``, ``2``);
- level 4: a linear equation in x (``-3``, ``7/2``);
- level 5: symbolic: expand a product (``x^2+2x+1``; the answer must be expanded), or the
  positive root of ``a x^2 = b`` (reference in simplest radical form, ``\\frac{\\sqrt{2}}{2}``;
  any equal form scores);
- level 6: column arithmetic: addition or subtraction of two operands in 0..99, differences
  never negative (``What is 86 + 82?`` -> ``168``, ``What is 57 - 23?`` -> ``34``), 15,050
  distinct questions. Not in the default mix
  (ask for ``levels=6``); it is the main job of ``grpo train``. Each task also carries a
  worked answer in ``meta["worked_answer"]`` (:func:`column_worked_answer`), the form a
  supervised warm start imitates.

Levels 1 and 6 are meant to be learnable by the built-in tiny language model.

The loaders read GSM8K-format (``question``, ``answer`` ending in ``#### 72``) and MATH-format
(``problem``, ``solution`` with a ``\\boxed{}`` answer, optional ``answer``, ``level``,
``type``) data through the ``datasets`` library, from a local file or a hub name.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

from grpo_envs.tasks.base import GeneratedTasks, Task
from grpo_envs.verify.math import extract_answer

#: The levels a generated Math-v0 draws from by default.
LEVELS: tuple[int, ...] = (1, 2, 3, 4, 5)
#: Every level the generator knows: the default mix plus level 6 (column arithmetic), which
#: is asked for by name.
ALL_LEVELS: tuple[int, ...] = (*LEVELS, 6)
#: Level 6's operands lie in 0..COLUMN_OPERAND_MAX: two digits, 100 x 100 sums and 5,050
#: non-negative differences, too many for a small model to memorise (~3,000 are held out).
COLUMN_OPERAND_MAX = 99
SPLITS: tuple[str, ...] = ("train", "test")
#: Share of all possible questions that belong to the held-out ``test`` split.
TEST_FRACTION = 0.2
#: A split's generator draws candidates until one belongs to it; with TEST_FRACTION = 0.2 a
#: test task needs 5 draws on average, so 1000 failing draws means a broken generator.
_MAX_DRAWS = 1000


def split_of(question: str) -> str:
    """``"train"`` or ``"test"``: the split a question belongs to, by a stable hash of its text."""
    digest = hashlib.blake2b(question.encode("utf-8"), digest_size=8).digest()
    return "test" if int.from_bytes(digest, "big") / 2**64 < TEST_FRACTION else "train"


# -- formatting -------------------------------------------------------------------------------


def format_fraction(value: Fraction) -> str:
    """``5/6``, ``-7/2``, or an integer ``3`` when the denominator is 1."""
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def format_polynomial(coefficients: Sequence[int], variable: str = "x") -> str:
    """Coefficients from the highest power down, e.g. ``[1, 2, 1]`` -> ``x^2+2x+1``."""
    degree = len(coefficients) - 1
    parts: list[str] = []
    for i, c in enumerate(coefficients):
        if c == 0:
            continue
        power = degree - i
        sign = "-" if c < 0 else "+"
        magnitude = abs(c)
        if power == 0:
            body = str(magnitude)
        else:
            body = ("" if magnitude == 1 else str(magnitude)) + variable + (f"^{power}" if power > 1 else "")
        parts.append(f"{sign}{body}")
    if not parts:
        return "0"
    text = "".join(parts)
    return text[1:] if text.startswith("+") else text


def _signed_term(c: int, variable: str = "") -> str:
    """`` + 3x`` / `` - 3x`` for the middle of an expression."""
    magnitude = "" if abs(c) == 1 and variable else str(abs(c))
    return f" {'-' if c < 0 else '+'} {magnitude}{variable}"


# -- generators: each takes an RNG and returns (question, reference, family) -------------------

Generated = tuple[str, str, str]


def _level1(rng: random.Random) -> Generated:
    op = rng.choice("+-*")
    if op == "*":
        a, b = rng.randint(0, 12), rng.randint(0, 12)
    else:
        a, b = rng.randint(0, 20), rng.randint(0, 20)
    value = a + b if op == "+" else a - b if op == "-" else a * b
    return f"What is {a} {op} {b}?", str(value), "arithmetic"


def _level2(rng: random.Random) -> Generated:
    a, b, c = rng.randint(2, 30), rng.randint(2, 30), rng.randint(2, 12)
    form = rng.randrange(4)
    if form == 0:
        expression, value = f"{a} + {b} * {c}", a + b * c
    elif form == 1:
        expression, value = f"({a} - {b}) * {c}", (a - b) * c
    elif form == 2:
        expression, value = f"{a} * {c} - {b}", a * c - b
    else:
        quotient = rng.randint(2, 12)
        expression, value = f"{quotient * c} / {c} - {b} + {a}", quotient - b + a
    return f"Calculate {expression}.", str(value), "arithmetic"


def _level3(rng: random.Random) -> Generated:
    while True:
        b, d = rng.randint(2, 12), rng.randint(2, 12)
        x, y = Fraction(rng.randint(1, b - 1 if b > 2 else 1), b), Fraction(rng.randint(1, 2 * d), d)
        op = rng.choice("+-*/")
        value = x + y if op == "+" else x - y if op == "-" else x * y if op == "*" else x / y
        if value.denominator != 1 or rng.random() < 0.2:  # mostly genuine fractions
            break
    symbol = {"*": "\\times", "/": "\\div"}.get(op, op)
    question = (
        f"Compute $\\frac{{{x.numerator}}}{{{x.denominator}}} {symbol} "
        f"\\frac{{{y.numerator}}}{{{y.denominator}}}$. Give the answer as a fraction in lowest terms."
    )
    return question, format_fraction(value), "fractions"


def _level4(rng: random.Random) -> Generated:
    solution = Fraction(rng.randint(-12, 12), rng.choice((1, 1, 1, 2, 3)))
    a = rng.choice([k for k in range(-9, 10) if k != 0])
    if rng.random() < 0.5:  # a x + b = c
        b = rng.randint(-20, 20)
        value = a * solution + b
        if value.denominator != 1:
            return _level4(rng)
        lhs = f"{'' if a == 1 else '-' if a == -1 else a}x" + (_signed_term(b) if b else "")
        question = f"Solve for $x$: ${lhs} = {value}$."
    else:  # a x + b = c x + d
        c = rng.choice([k for k in range(-9, 10) if k not in (0, a)])
        b = rng.randint(-20, 20)
        d = (a - c) * solution + b
        if d.denominator != 1:
            return _level4(rng)
        lhs = f"{'' if a == 1 else '-' if a == -1 else a}x" + (_signed_term(b) if b else "")
        rhs = f"{'' if c == 1 else '-' if c == -1 else c}x" + (_signed_term(int(d)) if d else "")
        question = f"Solve for $x$: ${lhs} = {rhs}$."
    return question, format_fraction(solution), "linear_equation"


def _simplified_root(numerator: int, denominator: int) -> str:
    """``sqrt(numerator / denominator)`` in simplest radical form, as LaTeX (or a plain fraction)."""
    radicand = numerator * denominator  # sqrt(p/q) = sqrt(p*q) / q
    outside, inside = 1, radicand
    for factor in range(2, math.isqrt(radicand) + 1):
        while inside % (factor * factor) == 0:
            inside //= factor * factor
            outside *= factor
    g = math.gcd(outside, denominator)
    top, bottom = outside // g, denominator // g
    if inside == 1:
        return format_fraction(Fraction(top, bottom))
    radical = f"\\sqrt{{{inside}}}" if top == 1 else f"{top}\\sqrt{{{inside}}}"
    return radical if bottom == 1 else f"\\frac{{{radical}}}{{{bottom}}}"


def _level5(rng: random.Random) -> Generated:
    form = rng.randrange(3)
    if form == 0:  # (x + a)^2
        a = rng.choice([k for k in range(-9, 10) if k != 0])
        question = f"Expand $(x{_signed_term(a)})^2$."
        return question, format_polynomial([1, 2 * a, a * a]), "expand"
    if form == 1:  # (p x + a)(x + b)
        p = rng.randint(1, 3)
        a = rng.choice([k for k in range(-9, 10) if k != 0])
        b = rng.choice([k for k in range(-9, 10) if k != 0])
        first = f"{'' if p == 1 else p}x{_signed_term(a)}"
        question = f"Expand $({first})(x{_signed_term(b)})$."
        return question, format_polynomial([p, p * b + a, a * b]), "expand"
    # a x^2 = b: the positive root in simplest radical form, e.g. 2x^2 = 1 -> \frac{\sqrt{2}}{2}
    a, b = rng.randint(2, 9), rng.randint(1, 30)
    question = f"Find the positive solution of ${a}x^2 = {b}$."
    return question, _simplified_root(b, a), "radical"


def column_worked_answer(reference: str) -> str:
    """A completion that works out an integer answer the way column arithmetic does: the sign,
    the digits from the units column up, then the answer itself, which the verifier reads as
    the last number: ``"168"`` -> ``"861 168"``, ``"7"`` -> ``"7 7"`` (and ``"-34"`` -> ``"-43 -34"``,
    although level 6 asks for no negative result).

    Writing the units digit first lets a model that reads left to right produce each digit
    from the two operand digits of its column and the carry it has just written, instead of
    having to know the carry out of the units before it writes the tens.
    """
    value = int(reference)
    digits = str(abs(value))[::-1]
    return f"{'-' if value < 0 else ''}{digits} {value}"


def _level6(rng: random.Random) -> Generated:
    a, b = rng.randint(0, COLUMN_OPERAND_MAX), rng.randint(0, COLUMN_OPERAND_MAX)
    op = rng.choice("+-")
    if op == "-" and a < b:
        # Non-negative differences, as in column subtraction: a negative result would make the
        # first character of a worked answer (its sign) depend on comparing the whole operands.
        a, b = b, a
    value = a + b if op == "+" else a - b
    return f"What is {a} {op} {b}?", str(value), "column_arithmetic"


#: Worked answers (a completion that shows the work and ends with the answer), by family.
_WORKED: dict[str, Callable[[str], str]] = {"column_arithmetic": column_worked_answer}

#: Extra constraints on the *form* of an answer, checked by the env: "expand (x+1)^2" is not
#: answered by "(x+1)^2", although the two are equal.
_FORMS: dict[str, dict[str, str]] = {"expand": {"answer_form": "expanded"}}

_GENERATORS: dict[int, Callable[[random.Random], Generated]] = {
    1: _level1,
    2: _level2,
    3: _level3,
    4: _level4,
    5: _level5,
    6: _level6,
}


class ProceduralMathTasks(GeneratedTasks):
    """A fixed-size, deterministic source of generated math tasks.

    :param levels: difficulty levels to draw from (an int or a sequence of ints in 1..6);
        task ``k`` has level ``levels[k % len(levels)]``, so the levels are balanced.
    :param num_tasks: number of tasks (the source's length).
    :param split: ``"train"`` or ``"test"``; the two never share a question.
    :param seed: generation seed; ``source[k]`` depends only on ``(seed, split, k)``.

    Example::

        >>> tasks = ProceduralMathTasks(levels=1, num_tasks=100, split="test", seed=0)
        >>> task = tasks[3]
        >>> task.id, task.prompt == ProceduralMathTasks(1, 100, "test", 0)[3].prompt
        ('math-test-L1-00003', True)
    """

    def __init__(
        self, levels: int | Sequence[int] = LEVELS, num_tasks: int = 1000, split: str = "train", seed: int = 0
    ) -> None:
        super().__init__(num_tasks, levels, ALL_LEVELS)
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.split, self.seed = split, int(seed)

    def generate(self, index: int, level: int) -> Task:
        rng = random.Random(f"grpo-math:{self.seed}:{self.split}:{index}")
        for _ in range(_MAX_DRAWS):
            question, reference, family = _GENERATORS[level](rng)
            if split_of(question) == self.split:
                worked = {"worked_answer": _WORKED[family](reference)} if family in _WORKED else {}
                return Task(
                    prompt=question,
                    reference=reference,
                    id=f"math-{self.split}-L{level}-{index:05d}",
                    meta={"level": level, "family": family, "source": "procedural", **_FORMS.get(family, {}), **worked},
                )
        raise RuntimeError(f"level {level} produced no {self.split} question in {_MAX_DRAWS} draws")

    def __repr__(self) -> str:
        return (
            f"ProceduralMathTasks(levels={self.levels}, num_tasks={self.num_tasks}, split={self.split!r}, "
            f"seed={self.seed})"
        )


# -- dataset loaders --------------------------------------------------------------------------

_FILE_BUILDERS = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv"}


def _load_records(path_or_name: str, split: str, config: str | None) -> Any:
    """A ``datasets.Dataset``: a local file through the matching builder, else a hub dataset."""
    import datasets  # heavy; only the loaders need it

    suffix = os.path.splitext(path_or_name)[1].lower()
    if os.path.exists(path_or_name):
        if suffix not in _FILE_BUILDERS:
            raise ValueError(f"cannot read {path_or_name!r}: use a {', '.join(_FILE_BUILDERS)} file")
        return datasets.load_dataset(_FILE_BUILDERS[suffix], data_files={split: path_or_name}, split=split)
    if suffix in _FILE_BUILDERS:
        raise FileNotFoundError(f"no such file: {path_or_name!r} (a hub dataset name has no file extension)")
    return datasets.load_dataset(path_or_name, config, split=split)


def _limited(records: Any, limit: int | None) -> Any:
    if limit is not None and limit < len(records):
        return records.select(range(limit))
    return records


def gsm8k_reference(answer: str) -> str:
    """The final answer of a GSM8K ``answer`` field: the text after ``####``, commas removed."""
    if "####" not in answer:
        raise ValueError(f"a GSM8K answer must end with '#### <number>', got {answer[-80:]!r}")
    return answer.rsplit("####", 1)[1].strip().replace(",", "")


def load_gsm8k(
    path_or_name: str, split: str = "train", *, config: str | None = None, limit: int | None = None
) -> list[Task]:
    """Load GSM8K-format tasks: records with ``question`` and ``answer`` (``... #### 72``).

    :param path_or_name: a local ``.jsonl``/``.json``/``.parquet``/``.csv`` file, or a hub
        dataset name (e.g. ``"openai/gsm8k"`` with ``config="main"``; needs network access).
    :param split: the split to read; a local file is read as this split.
    :param config: the hub dataset's configuration name, if it has several.
    :param limit: keep only the first ``limit`` records.

    Example::

        >>> tasks = load_gsm8k("tests/fixtures/gsm8k_sample.jsonl")
        >>> tasks[0].reference
        '72'
    """
    records = _limited(_load_records(path_or_name, split, config), limit)
    missing = {"question", "answer"} - set(records.column_names)
    if missing:
        raise ValueError(f"{path_or_name!r} is not GSM8K-format: it lacks the column(s) {sorted(missing)}")
    return [
        Task(
            prompt=row["question"].strip(),
            reference=gsm8k_reference(row["answer"]),
            id=f"gsm8k-{split}-{i:05d}",
            meta={"source": "gsm8k"},
        )
        for i, row in enumerate(records)
    ]


def load_math(
    path_or_name: str, split: str = "train", *, config: str | None = None, limit: int | None = None
) -> list[Task]:
    """Load MATH-format tasks: records with ``problem`` and ``solution`` (or ``answer``).

    The reference is the ``answer`` field when present, else the last ``\\boxed{}`` of the
    solution. ``level`` ("Level 3") and ``type`` ("Algebra") go into each task's ``meta``.

    :param path_or_name: a local file or a hub dataset name (see :func:`load_gsm8k`).
    :param split: the split to read; a local file is read as this split.
    :param config: the hub dataset's configuration name, if it has several.
    :param limit: keep only the first ``limit`` records.

    Example::

        >>> tasks = load_math("tests/fixtures/math_sample.jsonl")
        >>> tasks[0].reference
        '\\\\frac{1}{4}'
    """
    records = _limited(_load_records(path_or_name, split, config), limit)
    columns = set(records.column_names)
    if "problem" not in columns or not columns & {"solution", "answer"}:
        raise ValueError(f"{path_or_name!r} is not MATH-format: it needs 'problem' and 'solution' or 'answer' columns")
    tasks = []
    for i, row in enumerate(records):
        reference = row.get("answer") or extract_answer(row.get("solution") or "", strategies=("boxed",))
        if not reference:
            raise ValueError(f"record {i} of {path_or_name!r} has no 'answer' and no \\boxed{{}} in its solution")
        meta: dict[str, Any] = {"source": "math"}
        level = str(row.get("level") or "")
        if level.startswith("Level ") and level[6:].strip().isdigit():
            meta["level"] = int(level[6:])
        if row.get("type"):
            meta["type"] = row["type"]
        tasks.append(
            Task(prompt=row["problem"].strip(), reference=reference.strip(), id=f"math-{split}-{i:05d}", meta=meta)
        )
    return tasks
