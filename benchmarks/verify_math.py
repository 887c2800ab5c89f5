"""Throughput and agreement of the math verifier against math-verify, on a MATH-like mix of answers.

Run::

    .venv/bin/python benchmarks/verify_math.py              # 1,000 pairs + the labelled table
    .venv/bin/python benchmarks/verify_math.py --pairs 300 --show 10
    .venv/bin/python benchmarks/verify_math.py --smoke      # 40 pairs, seconds (CI)
    .venv/bin/python benchmarks/verify_math.py --count-types tests/data/math500_answers.jsonl

**The mix.** 1,000 distinct (completion, reference) pairs whose reference answers follow the
answer types of MATH's test set, in the proportions measured on MATH-500 (the 500-problem
uniform sample of MATH's test split that Lightman et al., 2023, released in openai/prm800k):
each of its 500 ``answer`` fields was classified by :func:`answer_type` below, which gave

====================  =====  ========
type                  count  share
====================  =====  ========
integer (incl. base)    324   64.8%
fraction                 59   11.8%
radical                  22    4.4%
expression               15    3.0%
degrees                  14    2.8%
tuple                    10    2.0%
interval                 10    2.0%
decimal                   9    1.8%
text / choice             8    1.6%
pi_e                      8    1.6%
matrix                    7    1.4%
complex                   6    1.2%
list / set                4    0.8%
equation / named          4    0.8%
====================  =====  ========

(``--count-types tests/data/math500_answers.jsonl`` reproduces this table; that file holds
MATH-500's 500 answers with their ids, subjects and levels, without problems or solutions;
any MATH-format JSONL file with an ``answer`` field can be counted the same way).

For each type, seeded generators write references in MATH's own notation, and each
completion takes one of four styles in turn: the reference boxed as written; an equal form
written differently (``0.75`` for ``\\frac{3}{4}``, ``\\sqrt{50}`` for ``5\\sqrt{2}``, reordered
lists, ``x < 3`` for ``(-\\infty, 3)``, ...); "the final answer is $...$" with no box; and a
wrong answer boxed. The expected verdict of each pair is known by construction, so both
verifiers' accuracy on the mix is printed too.

**Timing.** Both verifiers run sequentially in this process on the same pairs, after one
untimed warm-up call each; ours sends what its fast path cannot decide to its worker process
(the round trip is included). math-verify gets the reference wrapped in ``\\boxed{}`` (its
recommended use for gold answers) and the completion as is. The script prints checks/s of
each, their ratio, agreement of the two verdicts, and the agreement of each with the labelled
table in tests/data/math_verdicts.jsonl. math-verify is a dependency of grpo-gym; without it
(a broken install) only our numbers are printed.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

from grpo_envs.verify.math import verify_math_answer
from grpo_envs.verify.math_forms import split_top_level, text_answer
from grpo_envs.verify.math_normalize import normalize_answer

Pair = tuple[str, str, str]  # (completion, reference, style): style is "<type>/<form>"
TABLE = Path(__file__).resolve().parents[1] / "tests" / "data" / "math_verdicts.jsonl"

#: Answer types of MATH-500's 500 references (see the module docstring), as counts.
MIX: dict[str, int] = {
    "integer": 324,
    "fraction": 59,
    "radical": 22,
    "expression": 15,
    "degrees": 14,
    "interval": 10,
    "decimal": 9,
    "text": 8,
    "pi_e": 8,
    "tuple": 10,
    "matrix": 7,
    "complex": 6,
    "list": 4,
    "equation": 4,
}


def answer_type(reference: str) -> str:
    """The answer type of a MATH reference, as counted for :data:`MIX`."""
    s = reference.strip()
    if text_answer(s) is not None:
        return "text"
    if "\\begin{" in s:
        return "matrix"
    n = normalize_answer(s)
    bracketed = len(n) > 2 and n[0] + n[-1] in ("[)", "(]", "[]") and len(split_top_level(n[1:-1])) == 2
    if "\\infty" in s or "\\cup" in s or bracketed or re.search(r"<|>|\\[lg]eq?(?![A-Za-z])", s):
        return "interval"
    if "=" in s:
        return "equation"
    if len(split_top_level(n)) > 1 or n.startswith("\\{"):
        return "list"
    if n.startswith("(") and len(split_top_level(n[1:-1])) > 1:
        return "tuple"
    if re.search(r"\^\s*\{?\\circ", s):
        return "degrees"
    if re.search(r"(?<![a-z\\])i(?![a-z])", n.replace("\\pi", "")):
        return "complex"
    if re.fullmatch(r"-?\d+", n):
        return "integer"
    if re.fullmatch(r"-?\d*\.\d+", n):
        return "decimal"
    if re.fullmatch(r"-?(?:\\frac\s*\{?-?\d+\}?\s*\{?\d+\}?|\d+/\d+)", n):
        return "fraction"
    if "\\sqrt" in n:
        return "radical"
    if "\\pi" in n or re.search(r"(?<![a-z\\])e(?![a-z])", n):
        return "pi_e"
    return "expression"


# -- generators: each returns (reference, an equal form, a wrong answer) -------------------------

Triple = tuple[str, str, str]


def _integer(rng: random.Random) -> Triple:
    n = rng.choice([rng.randint(-20, 100), rng.randint(100, 999), rng.randint(1000, 999_999)])
    if n >= 1000 and rng.random() < 0.5:
        return f"{n:,}".replace(",", ",\\!"), str(n), str(n + 10)
    if rng.random() < 0.1:
        digits = "".join(rng.choice("01234567") for _ in range(3)).lstrip("0") or "7"
        return f"{digits}_8", digits, f"{int(digits) + 1}_8"
    equal = rng.choice([f"{n:,}", f"x = {n}", f"{n}.0", f"{n} \\text{{ units}}"])
    return str(n), equal, str(n + rng.choice([-2, -1, 1, 2]))


def _fraction(rng: random.Random) -> Triple:
    while True:
        p, q = rng.randint(1, 30), rng.randint(2, 30)
        if Fraction(p, q).denominator == q:
            break
    sign = rng.choice(["", "", "-"])
    decimal = f"{float(Fraction(p, q)):.12g}"
    equal = decimal if Fraction(decimal) == Fraction(p, q) else f"\\dfrac{{{2 * p}}}{{{2 * q}}}"
    return f"{sign}\\frac{{{p}}}{{{q}}}", f"{sign}{equal}", f"{sign}\\frac{{{p + 1}}}{{{q}}}"


def _radical(rng: random.Random) -> Triple:
    k, m = rng.randint(2, 9), rng.choice([2, 3, 5, 6, 7, 10, 11, 13])
    if rng.random() < 0.5:
        return f"{k}\\sqrt{{{m}}}", f"\\sqrt{{{k * k * m}}}", f"{k}\\sqrt{{{m + 1}}}"
    return f"\\frac{{\\sqrt{{{m}}}}}{{{k}}}", f"\\frac{{1}}{{{k}}}\\sqrt{{{m}}}", f"\\frac{{\\sqrt{{{m}}}}}{{{k + 1}}}"


def _expression(rng: random.Random) -> Triple:
    a, b = rng.choice([k for k in range(-9, 10) if k]), rng.choice([k for k in range(-9, 10) if k])
    expanded = f"x^2 {'+' if a + b >= 0 else '-'} {abs(a + b)}x {'+' if a * b >= 0 else '-'} {abs(a * b)}"
    return expanded, f"(x {'+' if a >= 0 else '-'} {abs(a)})(x {'+' if b >= 0 else '-'} {abs(b)})", expanded + " + 1"


def _degrees(rng: random.Random) -> Triple:
    d = rng.choice([30, 45, 60, 75, 90, 120, 135, 150])
    return f"{d}^\\circ", str(d), f"{d + 15}^\\circ"


def _interval(rng: random.Random) -> Triple:
    a, b = sorted(rng.sample(range(-10, 11), 2))
    form = rng.randrange(3)
    if form == 0:
        return f"(-\\infty, {a})", f"x < {a}", f"(-\\infty, {a}]"
    if form == 1:
        return f"[{a}, {b})", f"\\left[{a},{b}\\right)", f"({a}, {b})"
    return (
        f"(-\\infty, {a}] \\cup [{b}, \\infty)",
        f"[{b},\\infty)\\cup(-\\infty,{a}]",
        f"(-\\infty, {a}) \\cup ({b}, \\infty)",
    )


def _decimal(rng: random.Random) -> Triple:
    value = Fraction(rng.randint(1, 999), rng.choice([4, 5, 8, 10, 20, 100]))
    text = f"{float(value):g}"
    if "." not in text:
        text += ".5"
        value = Fraction(text)
    return text, f"\\frac{{{value.numerator}}}{{{value.denominator}}}", f"{float(value) + 0.1:g}"


def _text(rng: random.Random) -> Triple:
    if rng.random() < 0.4:
        letter = rng.choice("ABCDE")
        other = rng.choice([c for c in "ABCDE" if c != letter])
        return f"\\text{{({letter})}}", letter, f"({other})"
    word, other = rng.sample(["Evelyn", "east", "even", "odd", "ellipse", "Navin", "Tuesday", "parabola"], 2)
    return f"\\text{{{word}}}", word, f"\\text{{{other}}}"


def _pi_e(rng: random.Random) -> Triple:
    k, m = rng.randint(2, 300), rng.choice([2, 3, 4, 6])
    if rng.random() < 0.5:
        return f"{k}\\pi", f"\\pi \\cdot {k}", f"{k + 1}\\pi"
    return f"\\frac{{{k}\\pi}}{{{m}}}", f"\\frac{{{k}}}{{{m}}}\\pi", f"\\frac{{{k}\\pi}}{{{m + 1}}}"


def _tuple(rng: random.Random) -> Triple:
    a, b = rng.sample(range(-9, 10), 2)
    if rng.random() < 0.5:
        return f"({a}, {b})", f"\\left( {a}, {b} \\right)", f"({b}, {a})"
    return f"\\left( {a}, \\frac{{\\pi}}{{{abs(b) + 2}}} \\right)", f"({a}, \\pi/{abs(b) + 2})", f"({a}, \\pi)"


def _matrix(rng: random.Random) -> Triple:
    a, b, c = (rng.randint(-9, 9) for _ in range(3))
    ref = f"\\begin{{pmatrix}} {a} \\\\ {b} \\\\ {c} \\end{{pmatrix}}"
    return ref, ref.replace("pmatrix", "bmatrix"), f"\\begin{{pmatrix}} {a} \\\\ {c} \\\\ {b} \\end{{pmatrix}}"


def _complex(rng: random.Random) -> Triple:
    a, b = rng.randint(-9, 9), rng.randint(1, 12)
    return f"{a} + {b}i", f"{b}i + {a}", f"{a} - {b}i"


def _list(rng: random.Random) -> Triple:
    a, b, c = rng.sample(range(-9, 10), 3)
    return f"{a}, {b}", f"{b}, {a}", f"{a}, {b}, {c}"


def _equation(rng: random.Random) -> Triple:
    a, b = rng.choice([k for k in range(-5, 6) if k]), rng.randint(-9, 9)
    if rng.random() < 0.5:
        return f"y = {a}x + {b}", f"{a}x - y + {b} = 0", f"y = {a}x + {b + 1}"
    return f"x = {b}", str(b), f"x = {b + 1}"


GENERATORS: dict[str, Callable[[random.Random], Triple]] = {
    "integer": _integer,
    "fraction": _fraction,
    "radical": _radical,
    "expression": _expression,
    "degrees": _degrees,
    "interval": _interval,
    "decimal": _decimal,
    "text": _text,
    "pi_e": _pi_e,
    "tuple": _tuple,
    "matrix": _matrix,
    "complex": _complex,
    "list": _list,
    "equation": _equation,
}

STYLES: list[tuple[str, Callable[[str, str, str], str]]] = [
    ("reference", lambda ref, equal, wrong: f"Working step by step, we get $\\boxed{{{ref}}}$."),
    ("equal form", lambda ref, equal, wrong: f"So the result is \\boxed{{{equal}}}."),
    ("answer is", lambda ref, equal, wrong: f"Therefore, the final answer is ${ref}$."),
    ("wrong", lambda ref, equal, wrong: f"I get $\\boxed{{{wrong}}}$."),
]


def _quotas(n_pairs: int) -> dict[str, int]:
    """Pairs per type: MIX scaled to ``n_pairs`` (largest remainders), every type at least once."""
    total = sum(MIX.values())
    exact = {kind: n_pairs * count / total for kind, count in MIX.items()}
    quotas = {kind: max(1, int(value)) for kind, value in exact.items()}
    by_remainder = sorted(exact, key=lambda kind: exact[kind] - int(exact[kind]), reverse=True)
    k = 0
    while sum(quotas.values()) < n_pairs:
        quotas[by_remainder[k % len(by_remainder)]] += 1
        k += 1
    while sum(quotas.values()) > n_pairs:
        largest = max(quotas, key=lambda kind: quotas[kind])
        quotas[largest] -= 1
    return quotas


def build_pairs(n_pairs: int, seed: int) -> list[Pair]:
    """``n_pairs`` distinct (completion, reference, style) triples in MIX's proportions."""
    rng = random.Random(seed)
    pairs: dict[tuple[str, str], str] = {}
    for kind, quota in _quotas(n_pairs).items():
        made, tries = 0, 0
        while made < quota:
            tries += 1
            if tries > 200 * quota:
                raise RuntimeError(f"could only build {made} distinct {kind} pairs")
            reference, equal, wrong = GENERATORS[kind](rng)
            style, write = STYLES[tries % len(STYLES)]
            key = (write(reference, equal, wrong), reference)
            if key not in pairs:
                pairs[key] = f"{kind}/{style}"
                made += 1
    return [(completion, reference, style) for (completion, reference), style in pairs.items()]


def expected(style: str) -> bool:
    """The verdict a pair must get, known by construction."""
    return not style.endswith("/wrong")


def run_ours(pairs: list[Pair]) -> tuple[list[bool], list[float], list[str]]:
    """Verdicts, per-pair seconds and the method used (``fast`` never reaches the worker)."""
    verify_math_answer("\\boxed{(x+1)^2}", "x^2+2x+1")  # warm-up: starts the worker
    verdicts, seconds, methods = [], [], []
    for completion, reference, _ in pairs:
        start = time.perf_counter()
        result = verify_math_answer(completion, reference)
        seconds.append(time.perf_counter() - start)
        verdicts.append(result.correct)
        methods.append(f"{result.details.get('method')}/{result.reason}")
    return verdicts, seconds, methods


def run_math_verify(pairs: list[Pair]) -> tuple[list[bool], list[float]] | None:
    """math-verify's verdicts and per-pair seconds (gold wrapped in ``\\boxed{}``), or None if not installed."""
    try:
        from math_verify import parse, verify
    except ImportError:
        return None
    verify(parse("\\boxed{x^2+2x+1}"), parse("\\boxed{(x+1)^2}"))  # warm-up: imports and grammar
    verdicts, seconds = [], []
    for completion, reference, _ in pairs:
        start = time.perf_counter()
        verdicts.append(bool(verify(parse("\\boxed{" + reference + "}"), parse(completion))))
        seconds.append(time.perf_counter() - start)
    return verdicts, seconds


def table_agreement() -> tuple[int, int, int | None]:
    """``(ours, math-verify or None, n)``: how many labelled table cases each verifier gets right."""
    rows = [json.loads(line) for line in TABLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    pairs = [(row["completion"], row["reference"], "") for row in rows]
    ours, _, _ = run_ours(pairs)
    theirs = run_math_verify(pairs)
    labels = [row["verdict"] for row in rows]
    ours_right = sum(a == b for a, b in zip(ours, labels, strict=True))
    mv_right = None if theirs is None else sum(a == b for a, b in zip(theirs[0], labels, strict=True))
    return ours_right, len(rows), mv_right


def count_types(path: str) -> Counter:
    """Answer types of a MATH-format JSONL file (one record per line with an ``answer`` field)."""
    with open(path, encoding="utf-8") as f:
        return Counter(answer_type(json.loads(line)["answer"]) for line in f if line.strip())


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Build the pairs, time both verifiers, print rates, ratio and agreement; return the numbers."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=1000, help="number of distinct (completion, reference) pairs")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated references")
    parser.add_argument("--show", type=int, default=5, help="how many disagreements to print")
    parser.add_argument("--smoke", action="store_true", help="40 pairs and no table: a quick end-to-end check")
    parser.add_argument("--count-types", metavar="JSONL", help="print the answer types of a MATH-format file and exit")
    args = parser.parse_args(argv)
    if args.count_types:
        counts = count_types(args.count_types)
        total = sum(counts.values())
        for kind, n in counts.most_common():
            print(f"{kind:12} {n:5} {n / total:6.1%}")
        return {kind: float(n) for kind, n in counts.items()}
    n_pairs = 40 if args.smoke else args.pairs

    pairs = build_pairs(n_pairs, args.seed)
    kinds = Counter(style.split("/")[0] for _, _, style in pairs)
    print(f"{len(pairs)} distinct pairs: " + ", ".join(f"{n} {k}" for k, n in kinds.most_common()))
    labels = [expected(style) for _, _, style in pairs]

    ours, ours_seconds, methods = run_ours(pairs)
    ours_rate = len(pairs) / sum(ours_seconds)
    ours_right = sum(a == b for a, b in zip(ours, labels, strict=True))
    print(f"\nours:        {ours_rate:9.1f} checks/s  ({sum(ours_seconds):.2f} s), ", end="")
    print(f"as constructed on {ours_right}/{len(pairs)}")
    print("             method/reason: " + ", ".join(f"{k} {v}" for k, v in sorted(Counter(methods).items())))
    numbers = {"pairs": float(len(pairs)), "ours_per_s": ours_rate, "ours_right": float(ours_right)}

    theirs = run_math_verify(pairs)
    if theirs is None:
        print("math-verify: not installed (pip install math-verify); no comparison")
        return numbers
    mv, mv_seconds = theirs
    mv_rate = len(pairs) / sum(mv_seconds)
    mv_right = sum(a == b for a, b in zip(mv, labels, strict=True))
    agree = sum(a == b for a, b in zip(ours, mv, strict=True))
    print(f"math-verify: {mv_rate:9.1f} checks/s  ({sum(mv_seconds):.2f} s), as constructed on {mv_right}/{len(pairs)}")
    print(f"\nratio ours / math-verify: {ours_rate / mv_rate:.1f}x;  ", end="")
    print(f"agreement: {agree}/{len(pairs)} = {agree / len(pairs):.1%}")
    disagreements = [(p, a, b) for p, a, b in zip(pairs, ours, mv, strict=True) if a != b]
    if disagreements:
        by_style = Counter(p[2] for p, _, _ in disagreements)
        print("disagreements by type/style: " + ", ".join(f"{s} {n}" for s, n in by_style.most_common()))
    for (completion, reference, style), a, b in disagreements[: args.show]:
        print(f"  [{style}] reference {reference!r}, completion {completion!r}: ours {a}, math-verify {b}")
    numbers.update(mv_per_s=mv_rate, mv_right=float(mv_right), agreement=agree / len(pairs), ratio=ours_rate / mv_rate)

    table_line = ""
    if not args.smoke:
        table_ours, n_table, table_mv = table_agreement()
        mv_share = (table_mv or 0) / n_table
        table_line = f" | {table_ours}/{n_table} = {table_ours / n_table:.1%} | {table_mv}/{n_table} = {mv_share:.1%}"
        numbers.update(table_ours=table_ours / n_table, table_mv=mv_share)
    print(
        f"\n| pairs | ours checks/s | math-verify checks/s | ratio | verdicts agree | ours as constructed | "
        f"math-verify as constructed |{' ours on the table | math-verify on the table |' if table_line else ''}"
    )
    print("|---" * (9 if table_line else 7) + "|")
    print(
        f"| {len(pairs)} | {ours_rate:.0f} | {mv_rate:.0f} | {ours_rate / mv_rate:.1f}x | {agree / len(pairs):.1%} | "
        f"{ours_right / len(pairs):.1%} | {mv_right / len(pairs):.1%}{table_line} |"
    )
    return numbers


if __name__ == "__main__":
    main()
