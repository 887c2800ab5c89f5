"""Rewards per second in this process against ``reward_workers`` worker processes, in one run.

Two workloads, each scored the way GRPO scores a rollout (``score_completions``: one reset and
step per completion, results in order):

- ``grpo/Code-v0`` on HumanEval: the canonical solutions of the first ``--problems`` problems
  (every one passes), run in the sandbox;
- ``grpo/Math-v0`` level 3 (fractions and linear equations): the right answer to each of
  ``--math-tasks`` tasks, stated as "The answer is ...". The verifier's fast path settles these
  in microseconds in the scoring process, so this row shows what a worker's round trip costs
  when the reward itself is cheap.

Each is scored in-process and with each ``--workers`` count, in local worker processes and on
Ray workers (``reward_backend="ray"``, a local Ray with as many CPUs as the largest worker count;
skipped with a note when Ray is not installed); the pool's start-up (a fresh interpreter per
worker importing the env, and for Ray the start of Ray itself) is timed apart from the scoring.
The ratio to in-process is measured in the same run.

Run::

    .venv/bin/python benchmarks/reward_scale.py
    .venv/bin/python benchmarks/reward_scale.py --workers 1 2 4 --problems 164
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _report


def workloads(problems: int, math_tasks: int) -> dict[str, tuple[Any, list[str], list[int]]]:
    """Name -> (env, completions, task ids)."""
    import gymnasium as gym

    import grpo_envs  # noqa: F401 - registers the grpo/* ids

    code = gym.make("grpo/Code-v0", source="humaneval")
    code_tasks = code.unwrapped.tasks
    n = min(problems, len(code_tasks))
    solutions = [code_tasks[k].reference.solution for k in range(n)]
    math = gym.make("grpo/Math-v0", levels=3, num_tasks=math_tasks)
    answers = [f"The answer is {str(math.unwrapped.tasks[k].reference).replace(' ', '')} ." for k in range(math_tasks)]
    return {
        f"Code-v0 (HumanEval canonical, {n})": (code, solutions, list(range(n))),
        f"Math-v0 level 3 ({math_tasks})": (math, answers, list(range(math_tasks))),
    }


def time_scoring(
    env: Any, actions: list[str], task_ids: list[int], workers: int, backend: str = "processes"
) -> dict[str, float]:
    """Seconds to start the pool (0 in-process), seconds and rewards/s to score, mean reward."""
    from grpo_agent.common.ray_rewards import RayRewardPool
    from grpo_agent.common.reward_workers import RewardPool, RewardWorkerPool
    from grpo_agent.common.rollout import score_completions

    pool: RewardPool | None = None
    if workers:
        pool = RayRewardPool(env, workers) if backend == "ray" else RewardWorkerPool(env, workers)
    started = time.perf_counter()
    if pool is not None:  # warm the workers up: their start-up is paid once per run, not per rollout
        pool.score(actions[: workers * 2], task_ids[: workers * 2])
    start_seconds = time.perf_counter() - started
    t0 = time.perf_counter()
    scored = score_completions(env, actions, task_ids, lambda r, i: True, pool)
    seconds = time.perf_counter() - t0
    if pool is not None:
        pool.close()
    assert scored is not None
    return {
        "start_s": start_seconds,
        "score_s": seconds,
        "rewards_per_s": len(actions) / seconds,
        "mean_reward": float(scored[0].mean()),
    }


def _where(backend: str, workers: int) -> str:
    if workers == 0:
        return "this process"
    return f"{workers} {'Ray ' if backend == 'ray' else ''}worker(s)"


def main(argv: list[str] | None = None) -> int:
    """Score every workload in-process and with each worker count; print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to measure")
    parser.add_argument("--problems", type=int, default=164, help="HumanEval problems (canonical solutions)")
    parser.add_argument(
        "--math-tasks",
        type=int,
        default=10000,
        help="Math-v0 level-3 tasks (10,000 take ~0.7 s; with 2,000 the ratios moved 1.0-1.5x between runs)",
    )
    parser.add_argument("--no-ray", action="store_true", help="leave the Ray rows out")
    parser.add_argument("--out-dir", type=pathlib.Path, default=pathlib.Path("benchmarks/results"))
    args = parser.parse_args(argv)

    backends = ["processes"]
    note = ""
    started_ray = False
    if not args.no_ray:
        try:
            import logging

            import ray
        except ImportError:
            note = "\nRay is not installed here (`pip install 'grpo-gym[ray]'`): no Ray rows.\n"
        else:
            backends.append("ray")
            if not ray.is_initialized():  # a Ray the caller started is used as it is
                started = time.perf_counter()
                ray.init(
                    num_cpus=max(args.workers),
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.ERROR,
                )
                started_ray = True
                note = f"\nStarting the local Ray took {time.perf_counter() - started:.1f} s (not in the table).\n"
    rows = []
    for name, (env, actions, task_ids) in workloads(args.problems, args.math_tasks).items():
        base = time_scoring(env, actions, task_ids, 0)
        rows.append({"workload": name, "backend": "", "workers": 0, **base, "ratio": 1.0})
        for backend in backends:
            for workers in args.workers:
                result = time_scoring(env, actions, task_ids, workers, backend)
                rows.append(
                    {
                        "workload": name,
                        "backend": backend,
                        "workers": workers,
                        **result,
                        "ratio": result["rewards_per_s"] / base["rewards_per_s"],
                    }
                )
        env.close()
    if started_ray:
        import ray

        ray.shutdown()
    header = ["workload", "scored in", "rewards/s", "vs in-process", "mean reward", "pool start-up s"]
    table = _report.markdown_table(
        header,
        [
            [
                r["workload"], _where(r["backend"], r["workers"]),
                f"{r['rewards_per_s']:.0f}", f"{r['ratio']:.2f}x", f"{r['mean_reward']:.3f}", f"{r['start_s']:.1f}",
            ]
            for r in rows
        ],
    )  # fmt: skip
    text = f"# Rewards per second: in-process vs reward workers (processes, Ray)\n\n{table}\n{note}"
    print(text)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    _report.write_markdown(args.out_dir / "reward_scale.md", text, _report.machine_description())
    _report.write_csv(args.out_dir / "reward_scale.csv", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
