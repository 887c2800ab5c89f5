"""The main job (`grpo train`), measured, and the baselines it must be compared with.

Four arms, several seeds each, every run in its own process (peak memory is its own):

- ``grpo``: the real command, ``grpo train`` (plus ``--seed``, ``--output``, ``--threads``,
  ``--eval-every``), from an empty warm-start cache: its wall time includes the warm start
  and every evaluation.
- ``ppo``: ``grpo train --algo ppo``: the same warm start (the GRPO run's cache, so the very
  same weights), the same completions per update and in total, the same held-out set.
- ``sft``: the obvious alternative to RL: the same warm start trained further by supervised
  learning on the same demonstrations, for as long as the GRPO run of that seed trained
  (its ``train_seconds``), then evaluated like the others.
- ``beyond``: RL where the demonstrations do not reach: the tiny model is warm-started (the
  main job's SFT settings) only on training questions whose operands are both at most
  ``EASY_MAX`` (49), then GRPO trains on the whole level (operands 0..99) with only the
  verifier's reward; held-out accuracy is measured on test questions with an operand above
  ``EASY_MAX``: harder than every demonstration.

"Samples to target" is the number of completions the weights had trained on at the first
held-out evaluation (every ``--eval-every`` updates) whose greedy accuracy reaches
``--target`` (absolute).

Run::

    .venv/bin/python benchmarks/main_job.py --threads 1 --jobs 2           # all arms, seeds 0 1 2
    .venv/bin/python benchmarks/main_job.py --arms grpo sft --seeds 0

Writes ``main_job.csv`` (one row per run) and ``main_job.md`` (the tables) under ``--out-dir``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import pathlib
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _report

ROOT = pathlib.Path(__file__).resolve().parent.parent
#: The issue's targets for the default command (issue 15).
TARGET_GAIN_POINTS = 25.0
TARGET_SECONDS = 300
#: Operands of the "beyond the demonstrations" warm start are at most this (level 6 goes to 99).
EASY_MAX = 49
_QUESTION = re.compile(r"What is (\d+) ([+-]) (\d+)\?")


def _cli(args: list[str], cache: pathlib.Path, threads: int) -> tuple[dict[str, Any], float]:
    cmd = [sys.executable, "-m", "grpo_agent.cli", "train", "--threads", str(threads), "--no-progress", *args]
    print("$ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=ROOT, env={**os.environ, "GRPO_GYM_CACHE": str(cache)}, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    out = pathlib.Path(args[args.index("--output") + 1])
    return json.loads((out / "summary.json").read_text()), wall


def samples_to_target(run_dir: pathlib.Path, summary: dict[str, Any], target: float) -> int | None:
    """Completions trained on at the first held-out evaluation at or above ``target``."""
    points = [(0, summary["heldout_accuracy_before"])]
    with open(run_dir / "progress.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get("eval/heldout_accuracy") not in (None, ""):
                points.append((int(float(row["eval/trained_completions"])), float(row["eval/heldout_accuracy"])))
    points.append((summary["timesteps"], summary["heldout_accuracy_after"]))
    return next((x for x, acc in points if acc >= target - 1e-9), None)


def run_cli_arm(arm: str, seed: int, args: argparse.Namespace, runs: pathlib.Path) -> dict[str, Any]:
    """``grpo`` or ``ppo``: the command itself (PPO reuses GRPO's warm-start cache of the seed)."""
    out = runs / f"{arm}-seed{seed}"
    extra = ["--algo", "ppo"] if arm == "ppo" else []
    summary, wall = _cli(
        [*extra, "--seed", str(seed), "--output", str(out), "--eval-every", str(args.eval_every)],
        runs / f"cache-seed{seed}",
        args.threads,
    )
    return cli_row(arm, seed, out, summary, wall, args.target)


def cli_row(
    arm: str, seed: int, out: pathlib.Path, summary: dict[str, Any], wall: float, target: float
) -> dict[str, Any]:
    """One table row from a ``grpo train`` run folder's summary."""
    return {
        "arm": arm,
        "seed": seed,
        "before": summary["heldout_accuracy_before"],
        "after": summary["heldout_accuracy_after"],
        "gain_points": summary["heldout_gain_points"],
        "sampled_before": summary["heldout_before"]["sampled_accuracy"]["value"],
        "sampled_after": summary["heldout_after"]["sampled_accuracy"]["value"],
        "pass8_before": summary["heldout_before"]["pass@8"]["value"],
        "pass8_after": summary["heldout_after"]["pass@8"]["value"],
        "process_seconds": round(wall, 1),
        "train_seconds": summary["train_seconds"],
        "peak_memory_mb": summary["peak_memory_mb"],
        "completions": summary["timesteps"],
        "samples_to_target": samples_to_target(out, summary, target),
        "run_dir": str(out),
    }


# -- in-process arms (run as `main_job.py --worker ARM SEED BUDGET RUNS`) -----------------------


def _main_job_envs(**extra: Any) -> tuple[Any, Any]:
    import gymnasium as gym

    import grpo_envs  # noqa: F401
    from grpo_agent import cli

    kwargs = {**cli.DEFAULT_ENV_KWARGS[cli.DEFAULT_ENV], **extra}
    return gym.make(cli.DEFAULT_ENV, **kwargs), gym.make(cli.DEFAULT_ENV, **{**kwargs, "split": "test"})


def _before_after(before: Any, after: Any) -> dict[str, float]:
    """A row's accuracy columns from two evaluation reports (greedy, sampled, pass@8)."""
    return {
        "before": before.greedy.value,
        "after": after.greedy.value,
        "gain_points": 100 * (after.greedy.value - before.greedy.value),
        "sampled_before": before.sampled.value,
        "sampled_after": after.sampled.value,
        "pass8_before": before.pass_at[8].value,
        "pass8_after": after.pass_at[8].value,
    }


def worker_sft(seed: int, budget_seconds: float, runs: pathlib.Path) -> dict[str, Any]:
    """More SFT from the seed's warm start, on the same demonstrations, for ``budget_seconds``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from grpo_agent import cli
    from grpo_agent.policies import tiny
    from grpo_agent.policies.causal_lm import CausalLMPolicy
    from grpo_agent.run.accuracy import evaluate_report

    train_env, test_env = _main_job_envs()
    folder = next((runs / f"cache-seed{seed}" / "tiny").glob("[!.]*"))
    model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    settings = cli.main_job_settings()
    config = tiny.SFTConfig(**{**settings["sft"], "seed": seed})
    kept, _ = tiny.split_off_check_tasks(train_env, config.check_tasks)  # the warm start's own demonstrations
    examples = [(t.prompt, tiny.reference_completion(train_env, t)) for t in kept]
    policy = CausalLMPolicy(None, None, model, tokenizer, device="cpu", max_new_tokens=settings["max_new_tokens"])
    before = evaluate_report(policy, test_env, settings["eval_tasks"])
    start = time.perf_counter()
    # A fresh optimiser at the warm start's learning rate, already warmed up; a new batch order
    # (seed + 1000), so it does not replay the warm start's first batches.
    more = tiny.SFTConfig(steps=10**6, seed=seed + 1000, warmup_steps=1, check_every=5)
    losses = tiny.sft(
        model, tokenizer, examples, more, should_stop=lambda _: time.perf_counter() - start >= budget_seconds
    )
    seconds = time.perf_counter() - start
    after = evaluate_report(policy, test_env, settings["eval_tasks"])
    del torch
    return {
        "arm": "sft",
        "seed": seed,
        **_before_after(before, after),
        "train_seconds": round(seconds, 1),
        "sft_steps": len(losses),
        "completions": len(losses) * more.batch_size,
    }


def _operands(prompt: str) -> tuple[int, int]:
    match = _QUESTION.search(prompt)
    if match is None:
        raise ValueError(f"not a level-6 question: {prompt!r}")
    return int(match.group(1)), int(match.group(3))


def worker_beyond(seed: int, runs: pathlib.Path, threads: int) -> dict[str, Any]:
    """SFT on questions with both operands <= EASY_MAX, GRPO on all, held-out on the others."""
    import gymnasium as gym

    from grpo_agent import cli
    from grpo_agent.policies.tiny import TinyPolicy
    from grpo_agent.run.accuracy import evaluate_report

    settings = {**cli.main_job_settings(), "seed": seed}
    train_env, test_env = _main_job_envs()
    template = cli.DEFAULT_ENV_KWARGS[cli.DEFAULT_ENV]["prompt_template"]
    train_tasks, test_tasks = train_env.unwrapped.tasks.tasks, test_env.unwrapped.tasks.tasks  # bare questions
    easy = [t for t in (train_tasks[i] for i in range(len(train_tasks))) if max(_operands(t.prompt)) <= EASY_MAX]
    hard_test = [t for t in (test_tasks[i] for i in range(2000)) if max(_operands(t.prompt)) > EASY_MAX]
    easy_test = [t for t in (test_tasks[i] for i in range(2000)) if max(_operands(t.prompt)) <= EASY_MAX]
    n = settings["eval_tasks"]
    sft_env = gym.make(cli.DEFAULT_ENV, tasks=easy, prompt_template=template)
    hard_env = gym.make(cli.DEFAULT_ENV, tasks=hard_test[:n], prompt_template=template)
    easy_env = gym.make(cli.DEFAULT_ENV, tasks=easy_test[:n], prompt_template=template)
    os.environ["GRPO_GYM_CACHE"] = str(runs / f"cache-beyond-seed{seed}")
    start = time.perf_counter()
    policy = TinyPolicy(
        sft_env.observation_space,
        sft_env.action_space,
        sft_env,
        sft_config=settings["sft"],
        seed=seed,
        max_new_tokens=settings["max_new_tokens"],
        verbose=1,
    )
    hard_before, easy_before = evaluate_report(policy, hard_env, n), evaluate_report(policy, easy_env, n)
    model = cli.build_algorithm(settings, policy, train_env)
    model.learn(settings["total_timesteps"])
    hard_after, easy_after = evaluate_report(policy, hard_env, n), evaluate_report(policy, easy_env, n)
    return {
        "arm": "beyond",
        "seed": seed,
        **_before_after(hard_before, hard_after),
        "easy_before": easy_before.greedy.value,
        "easy_after": easy_after.greedy.value,
        "sft_examples": len(easy),
        "process_seconds": round(time.perf_counter() - start, 1),
        "completions": model.num_timesteps,
    }


def run_worker_arm(arm: str, seed: int, args: argparse.Namespace, runs: pathlib.Path, budget: float) -> dict:
    """``sft`` or ``beyond`` in a fresh process; its peak memory is read back with the result."""
    out = runs / f"{arm}-seed{seed}.json"
    cmd = [sys.executable, __file__, "--worker", arm, str(seed), str(budget), str(runs), str(args.threads)]
    print("$ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{arm} seed {seed} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(out.read_text())


def worker_main(argv: list[str]) -> None:
    import resource

    import torch

    arm, seed, budget, runs, threads = argv[0], int(argv[1]), float(argv[2]), pathlib.Path(argv[3]), int(argv[4])
    torch.set_num_threads(threads)
    result = worker_sft(seed, budget, runs) if arm == "sft" else worker_beyond(seed, runs, threads)
    result["peak_memory_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    (runs / f"{arm}-seed{seed}.json").write_text(json.dumps(result))


# -- report -------------------------------------------------------------------------------------


def _median(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return float(statistics.median(values)) if values else None


def tables(rows: list[dict[str, Any]], target: float) -> str:
    def pct(x: Any) -> str:
        return "" if x is None else f"{x:.1%}"

    def num(x: Any, fmt: str = "{:.0f}") -> str:
        return "" if x is None else fmt.format(x)

    lines = [
        "| arm | seed | held-out before | after | gain (points) | sampled before -> after | pass@8 before -> after "
        f"| process s | train s | peak MiB | completions | samples to {target:.0%} |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['arm']} | {r['seed']} | {pct(r['before'])} | {pct(r['after'])} | {r['gain_points']:+.1f} | "
            f"{pct(r['sampled_before'])} -> {pct(r['sampled_after'])} | {pct(r['pass8_before'])} -> "
            f"{pct(r['pass8_after'])} | {num(r.get('process_seconds'))} | {num(r.get('train_seconds'))} | "
            f"{num(r.get('peak_memory_mb'))} | {num(r.get('completions'), '{:,}')} | "
            f"{num(r.get('samples_to_target'), '{:,}') if r['arm'] in ('grpo', 'ppo') else ''} |"
        )
    lines += [
        "",
        "| arm | median gain | gains per seed | median train s | median peak MiB |",
        "| --- | --- | --- | --- | --- |",
    ]
    for arm in dict.fromkeys(r["arm"] for r in rows):
        mine = [r for r in rows if r["arm"] == arm]
        gains = ", ".join(f"{r['gain_points']:+.1f}" for r in mine)
        lines.append(
            f"| {arm} | {_median(mine, 'gain_points'):+.1f} | {gains} | {num(_median(mine, 'train_seconds'))} | "
            f"{num(_median(mine, 'peak_memory_mb'))} |"
        )
    beyond = [r for r in rows if r["arm"] == "beyond"]
    if beyond:
        lines += [
            "",
            f"beyond: before/after are held-out questions with an operand above {EASY_MAX} (no demonstration "
            f"has one); on held-out questions with both operands <= {EASY_MAX}: "
            + "; ".join(f"seed {r['seed']} {pct(r['easy_before'])} -> {pct(r['easy_after'])}" for r in beyond),
        ]
    return "\n".join(lines)


def collect(runs: pathlib.Path, target: float) -> list[dict[str, Any]]:
    """Every finished run under ``runs`` as a table row (``--render``): the command's own wall
    time (``summary.json``) stands for the process time of the ``grpo``/``ppo`` arms."""
    rows = []
    for arm in ("grpo", "ppo", "sft", "beyond"):
        for seed in range(100):
            folder, result = runs / f"{arm}-seed{seed}", runs / f"{arm}-seed{seed}.json"
            if (folder / "summary.json").exists():
                summary = json.loads((folder / "summary.json").read_text())
                if summary.get("status") == "finished":
                    rows.append(cli_row(arm, seed, folder, summary, summary["wall_seconds"], target))
            elif result.exists():
                rows.append(json.loads(result.read_text()))
    return rows


def write_outputs(rows: list[dict[str, Any]], args: argparse.Namespace, seeds: list[int]) -> None:
    """``main_job.csv`` and ``main_job.md`` under ``args.out_dir``; the table is printed too."""
    order = {a: i for i, a in enumerate(["grpo", "ppo", "sft", "beyond"])}
    rows.sort(key=lambda r: (order.get(r["arm"], 9), r["seed"]))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(args.out_dir / "main_job.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    text = (
        f"# The main job and its baselines, seeds {', '.join(map(str, seeds))}\n\n"
        + tables(rows, args.target)
        + f"\n\nMeasured on: {_report.machine_description()}; {args.threads} torch thread(s) per run, "
        f"{args.jobs} run(s) at a time.\n"
    )
    (args.out_dir / "main_job.md").write_text(text)
    print(text)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--arms", nargs="+", default=["grpo", "ppo", "sft", "beyond"])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per run")
    parser.add_argument("--jobs", type=int, default=2, help="runs at the same time")
    parser.add_argument("--eval-every", type=int, default=25, help="updates between held-out evaluations")
    parser.add_argument("--target", type=float, default=0.5, help="held-out accuracy of 'samples to target'")
    parser.add_argument("--out-dir", type=pathlib.Path, default=_report.DEFAULT_OUT_DIR)
    parser.add_argument("--runs-dir", type=pathlib.Path, default=None, help="run folders (default: a temp dir)")
    parser.add_argument(
        "--render", action="store_true", help="only re-render the tables from the finished runs in --runs-dir"
    )
    args = parser.parse_args()
    if args.render:
        rows = collect(args.runs_dir, args.target)
        write_outputs(rows, args, sorted({r["seed"] for r in rows}))
        return
    runs = args.runs_dir or pathlib.Path(tempfile.mkdtemp(prefix="main_job-"))
    runs.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []

    # Phase 1: GRPO for every seed (PPO reuses its warm start, SFT its training time); phase 2:
    # everything else, in one pool so that no core idles while a long PPO run finishes.
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        needs_grpo = {"grpo", "ppo", "sft"} & set(args.arms)
        grpo_rows = list(pool.map(lambda s: run_cli_arm("grpo", s, args, runs), args.seeds if needs_grpo else []))
        if "grpo" in args.arms:
            rows += grpo_rows
        budget = {r["seed"]: r["train_seconds"] for r in grpo_rows}
        jobs = [(arm, s) for arm in ("ppo", "beyond", "sft") if arm in args.arms for s in args.seeds]

        def run(job: tuple[str, int]) -> dict[str, Any]:
            arm, seed = job
            row = (
                run_cli_arm(arm, seed, args, runs)
                if arm == "ppo"
                else run_worker_arm(arm, seed, args, runs, budget.get(seed, 0.0))
            )
            print(f"  {arm} seed {seed}: {row['before']:.1%} -> {row['after']:.1%}", flush=True)
            return row

        rows += list(pool.map(run, jobs))
    write_outputs(rows, args, args.seeds)


if __name__ == "__main__":
    main()
