"""Smoke test of benchmarks/verify_math.py: the MATH-like mix is what its docstring says, and
the script runs end to end (speed itself is never asserted; see benchmarks/README.md)."""

from __future__ import annotations

import importlib
import pathlib
import sys
from collections import Counter
from typing import Any

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


def load() -> Any:
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    return importlib.import_module("verify_math")


def test_the_mix_follows_the_stated_proportions() -> None:
    bench = load()
    pairs = bench.build_pairs(1000, seed=0)
    assert len(pairs) == len({(c, r) for c, r, _ in pairs}) == 1000
    counts = Counter(style.split("/")[0] for _, _, style in pairs)
    total = sum(bench.MIX.values())
    for kind, count in bench.MIX.items():
        assert abs(counts[kind] - 1000 * count / total) <= 1, (kind, counts[kind])
    assert bench.MIX["integer"] / total > 0.6  # MATH's answers are mostly integers


def test_the_mix_is_the_count_of_math500s_answer_types() -> None:
    bench = load()
    math500 = pathlib.Path(__file__).parent / "data" / "math500_answers.jsonl"
    assert dict(bench.count_types(str(math500))) == bench.MIX


def test_each_generator_writes_references_of_its_own_type() -> None:
    bench = load()
    for _, reference, style in bench.build_pairs(1000, seed=1):
        kind = style.split("/")[0]
        assert bench.answer_type(reference) == kind, (reference, kind)


def test_answer_type_on_math_style_references() -> None:
    answer_type = load().answer_type
    examples = {
        "42": "integer",
        "52_8": "integer",
        r"\frac{14}{3}": "fraction",
        r"3\sqrt{13}": "radical",
        r"90^\circ": "degrees",
        r"(-\infty, 3]": "interval",
        r"\text{Evelyn}": "text",
        r"\left( 3, \frac{\pi}{2} \right)": "tuple",
        r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}": "matrix",
        "6 - 5i": "complex",
        "1,-2": "list",
        "y = 2x + 3": "equation",
        "p - q": "expression",
        r"18+2\pi": "pi_e",
        "0.25": "decimal",
    }
    assert {text: answer_type(text) for text in examples} == examples


def test_the_smoke_run_scores_every_pair_as_constructed(capsys: Any) -> None:
    numbers = load().main(["--smoke"])
    assert numbers["pairs"] == 40 and numbers["ours_right"] == 40 and numbers["ours_per_s"] > 0
    if "mv_per_s" in numbers:  # math-verify is a dependency, but the script also runs without it
        assert numbers["mv_per_s"] > 0 and 0.9 <= numbers["agreement"] <= 1.0
    out = capsys.readouterr().out
    assert "40 distinct pairs" in out and "checks/s" in out
