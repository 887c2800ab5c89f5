"""Throughput of the math verifier against math-verify, on the same 1,000 distinct pairs.

Run::

    .venv/bin/python benchmarks/verify_math.py              # 1,000 pairs
    .venv/bin/python benchmarks/verify_math.py --pairs 300 --show 10

The pairs are (completion, reference) built from grpo/Math-v0's generated tasks (all five
levels) in varied formats: the reference boxed as is, an equal form written differently
(``0.75`` for ``3/4``, ``\\frac{a}{b}``, ``(x+3)^2`` for ``x^2+6x+9``, ``\\sqrt{\\frac{b}{a}}``,
``1,000``, ``x = 5``), "the answer is ...", and wrong answers. Every completion ends in a
``\\boxed{}`` or "the answer is" so that both verifiers can find it.

Both verifiers run sequentially in this process (ours sends sympy work to its worker
process), each after one warm-up call that is not timed. The script prints checks per second
for each, their ratio, and how often the two verdicts agree (with examples of disagreement).
math-verify is optional (``pip install math-verify``, the ``bench`` extra): without it only our
numbers are printed.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Callable
from fractions import Fraction

from grpo_envs.tasks.base import Task
from grpo_envs.tasks.math import ProceduralMathTasks
from grpo_envs.verify.math import verify_math_answer

Pair = tuple[str, str, str]  # (completion, reference, style)


def _decimal(reference: str) -> str | None:
    try:
        value = Fraction(reference)
    except ValueError:
        return None
    text = f"{float(value):.12g}"
    return text if Fraction(text) == value and text != reference else None


def _latex_fraction(reference: str) -> str | None:
    if "/" not in reference or "\\" in reference:
        return None
    numerator, denominator = reference.split("/")
    sign = "-" if numerator.startswith("-") else ""
    return f"{sign}\\frac{{{numerator.lstrip('-')}}}{{{denominator}}}"


def _wrong(reference: str) -> str:
    try:
        return str(Fraction(reference) + 1)
    except ValueError:
        return reference + "+1"


def _equal_form(task: Task) -> str | None:
    """An answer equal to the reference but written differently, or None."""
    reference, family, question = task.reference, task.meta["family"], task.prompt
    if family == "expand":
        return question.split("$")[1]  # the product itself
    if family == "radical":
        a, b = question.split("$")[1].split("x^2 = ")
        return f"\\sqrt{{\\frac{{{b}}}{{{a}}}}}"
    if family == "linear_equation":
        return f"x = {reference}"
    decimal = _decimal(reference)
    if decimal is not None:
        return decimal
    fraction = _latex_fraction(reference)
    if fraction is not None:
        return fraction
    if reference.lstrip("-").isdigit() and abs(int(reference)) >= 1000:
        return f"{int(reference):,}"
    return None


STYLES: list[tuple[str, Callable[[Task], str | None]]] = [
    ("boxed reference", lambda t: f"Working step by step, we get $\\boxed{{{t.reference}}}$."),
    ("boxed equal form", lambda t: None if (f := _equal_form(t)) is None else f"So the result is \\boxed{{{f}}}."),
    ("answer is", lambda t: f"Therefore, the final answer is ${t.reference}$."),
    ("boxed wrong", lambda t: f"I get $\\boxed{{{_wrong(t.reference)}}}$."),
]


def build_pairs(n_pairs: int, seed: int) -> list[Pair]:
    """``n_pairs`` distinct (completion, reference, style) triples from generated tasks."""
    pairs: dict[tuple[str, str], str] = {}
    for split in ("train", "test"):
        tasks = ProceduralMathTasks(num_tasks=50 * n_pairs, split=split, seed=seed)
        for k in range(len(tasks)):
            task = tasks[k]
            style, write = STYLES[(k // 5) % len(STYLES)]  # levels cycle every 5 tasks
            completion = write(task)
            if completion is not None:
                pairs.setdefault((completion, task.reference), style)
            if len(pairs) >= n_pairs:
                return [(c, r, s) for (c, r), s in pairs.items()]
    raise RuntimeError(f"could only build {len(pairs)} distinct pairs")


def run_ours(pairs: list[Pair]) -> tuple[list[bool], list[float], list[str]]:
    """Verdicts, per-pair seconds and the method used (``fast`` never reaches sympy)."""
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
    """math-verify's verdicts and per-pair seconds (gold wrapped in ``$...$``), or None if not installed."""
    try:
        from math_verify import parse, verify
    except ImportError:
        return None
    verify(parse("$x^2+2x+1$"), parse("\\boxed{(x+1)^2}"))  # warm-up: imports and grammar
    verdicts, seconds = [], []
    for completion, reference, _ in pairs:
        start = time.perf_counter()
        verdicts.append(bool(verify(parse(f"${reference}$"), parse(completion))))
        seconds.append(time.perf_counter() - start)
    return verdicts, seconds


def main() -> None:
    """Build the pairs, time both verifiers, print rates, ratio, agreement and a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=1000, help="number of distinct (completion, reference) pairs")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated tasks")
    parser.add_argument("--show", type=int, default=5, help="how many disagreements to print")
    args = parser.parse_args()

    pairs = build_pairs(args.pairs, args.seed)
    styles = Counter(style for _, _, style in pairs)
    print(f"{len(pairs)} distinct pairs: " + ", ".join(f"{n} {s}" for s, n in sorted(styles.items())))

    ours, ours_seconds, methods = run_ours(pairs)
    ours_rate = len(pairs) / sum(ours_seconds)
    # The pairs our fast path (plain numbers, no sympy, no IPC) cannot decide: the fair test of
    # the sympy path, worker round trip included.
    slow = [i for i, m in enumerate(methods) if not m.startswith("fast/")]
    ours_slow_rate = len(slow) / sum(ours_seconds[i] for i in slow) if slow else float("nan")
    print(f"\nours:        {ours_rate:9.1f} checks/s  ({sum(ours_seconds):.2f} s, {sum(ours)} judged correct)")
    print(f"             {ours_slow_rate:9.1f} checks/s on the {len(slow)} pairs that need sympy")
    print("             method/reason: " + ", ".join(f"{k} {v}" for k, v in sorted(Counter(methods).items())))

    theirs = run_math_verify(pairs)
    if theirs is None:
        print("math-verify: not installed (pip install math-verify); no comparison")
        return
    mv, mv_seconds = theirs
    mv_rate = len(pairs) / sum(mv_seconds)
    mv_slow_rate = len(slow) / sum(mv_seconds[i] for i in slow) if slow else float("nan")
    agree = sum(a == b for a, b in zip(ours, mv))
    print(f"math-verify: {mv_rate:9.1f} checks/s  ({sum(mv_seconds):.2f} s, {sum(mv)} judged correct)")
    print(f"             {mv_slow_rate:9.1f} checks/s on the same {len(slow)} pairs")
    print(
        f"\nratio ours / math-verify: {ours_rate / mv_rate:.1f}x on all pairs, "
        f"{ours_slow_rate / mv_slow_rate:.1f}x on the sympy pairs;  agreement: {agree}/{len(pairs)} = {agree / len(pairs):.1%}"
    )
    disagreements = [(p, a, b) for p, a, b in zip(pairs, ours, mv) if a != b]
    if disagreements:
        by_style = Counter(p[2] for p, _, _ in disagreements)
        print("disagreements by style: " + ", ".join(f"{s} {n}" for s, n in sorted(by_style.items())))
    for (completion, reference, style), a, b in disagreements[: args.show]:
        print(f"  [{style}] reference {reference!r}, completion {completion!r}: ours {a}, math-verify {b}")

    print(
        f"\n| verifier | checks/s, all {len(pairs)} pairs | checks/s, {len(slow)} sympy pairs | judged correct | agreement |"
    )
    print("|---|---|---|---|---|")
    print(f"| grpo_envs.verify.math | {ours_rate:.0f} | {ours_slow_rate:.0f} | {sum(ours)} | - |")
    print(f"| math-verify 0.9 | {mv_rate:.0f} | {mv_slow_rate:.0f} | {sum(mv)} | {agree / len(pairs):.1%} |")


if __name__ == "__main__":
    main()
