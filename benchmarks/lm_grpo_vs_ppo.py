"""The main job, measured: `grpo train` (GRPO) and `grpo train --algo ppo` from scratch, several seeds.

Each run is the real command in its own process, exactly as a newcomer types it (plus
``--seed``, ``--output``, ``--threads`` and whatever ``--train-args`` adds), with its own
empty warm-start cache, so every wall time includes the supervised warm start and both
held-out evaluations. Per run the script reads the run folder's ``summary.json``:

- held-out accuracy before (the warm start) and after training (greedy, the ``test`` split of
  the main job's env, ``grpo/Math-v0`` level 6 since issue 15, the first 200 tasks by
  default), and the gain in points;
- wall time of the whole command, and training time alone (``learn``);
- peak resident memory of the run's process (``ru_maxrss``): on CPU it includes Python,
  torch and transformers themselves (~0.5 GB), so the difference between GRPO and PPO is the
  algorithm's own (the critic's weights, gradients, optimizer moments and activations).

GRPO and PPO get the same sample budget: the same number of completions per update (GRPO
``n_groups * group_size``; PPO one completion per prompt, as many prompts) and in total.

``benchmarks/main_job.py`` measures the same two commands with the baselines beside them
(more SFT, RL beyond the demonstrations) and samples to a target; this script stays for its
reward-curve plot and for measuring any ``--train-args`` variant of both algorithms.

Run::

    .venv/bin/python benchmarks/lm_grpo_vs_ppo.py                      # 3 seeds, GRPO and PPO
    .venv/bin/python benchmarks/lm_grpo_vs_ppo.py --seeds 0 --algos grpo --train-args="--total-timesteps 6400"

Writes ``lm_grpo_vs_ppo.csv`` (one row per run), ``lm_grpo_vs_ppo.md`` (the tables) and
``lm_grpo_vs_ppo.png`` (rollout reward against completions, every run) under ``--out-dir``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import json
import os
import pathlib
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_OUT_DIR = ROOT / "benchmarks" / "results"
#: Issue 15's targets for the default command: at most 5 minutes on 2 cores, and a median
#: held-out gain of at least 25 points over the warm start.
TARGET_SECONDS = 300
TARGET_GAIN_POINTS = 25.0


def machine() -> str:
    """When and where the numbers were taken (absolute times mean nothing without it)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, StopIteration):  # no /proc (macOS) or no "model name" line
        model = next(
            line.split(":", 1)[1].strip()
            for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"{now}; {cores} usable CPU cores ({model}); no GPU used; load average (1, 5, 15 min) {load}"


def run_one(algo: str, seed: int, threads: int, runs_dir: pathlib.Path, train_args: list[str]) -> dict[str, Any]:
    """One `grpo train` process; returns its summary plus the parent's wall-clock time."""
    out = runs_dir / f"{algo}-seed{seed}"
    cache = runs_dir / f"cache-{algo}-seed{seed}"  # empty: the run pays its own warm start
    cmd = [
        sys.executable,
        "-m",
        "grpo_agent.cli",
        "train",
        "--algo",
        algo,
        "--seed",
        str(seed),
        "--output",
        str(out),
        "--threads",
        str(threads),
        "--no-progress",
        *train_args,
    ]
    env = {**os.environ, "GRPO_GYM_CACHE": str(cache)}
    print("$ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{algo} seed {seed} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    summary = json.loads((out / "summary.json").read_text())
    print(
        f"  accuracy {summary['heldout_accuracy_before']:.1%} -> {summary['heldout_accuracy_after']:.1%}, "
        f"{wall:.0f}s, peak {summary['peak_memory_mb']:.0f} MiB",
        flush=True,
    )
    return {
        "algo": algo,
        "seed": seed,
        "before": summary["heldout_accuracy_before"],
        "after": summary["heldout_accuracy_after"],
        "gain_points": summary["heldout_gain_points"],
        "process_seconds": round(wall, 1),
        "train_seconds": summary["train_seconds"],
        "peak_memory_mb": summary["peak_memory_mb"],
        "timesteps": summary["timesteps"],
        "updates": summary["updates"],
        "run_dir": str(out),
    }


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def tables(rows: list[dict[str, Any]], algos: list[str]) -> str:
    """The per-run table and the GRPO-beside-PPO medians, in markdown."""
    lines = [
        "| algo | seed | accuracy before | accuracy after | gain (points) | process s | train s | peak MiB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['algo']} | {r['seed']} | {r['before']:.1%} | {r['after']:.1%} | {r['gain_points']:+.1f} | "
            f"{r['process_seconds']:.0f} | {r['train_seconds']:.0f} | {r['peak_memory_mb']:.0f} |"
        )
    lines += [
        "",
        (
            "| algo | median accuracy before | median after | median gain | median process s | median train s | "
            "median peak MiB |"
        ),
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    medians: dict[str, dict[str, float]] = {}
    for algo in algos:
        mine = [r for r in rows if r["algo"] == algo]
        if not mine:
            continue
        m = {
            k: median([r[k] for r in mine])
            for k in ("before", "after", "gain_points", "process_seconds", "train_seconds", "peak_memory_mb")
        }
        medians[algo] = m
        lines.append(
            f"| {algo} | {m['before']:.1%} | {m['after']:.1%} | {m['gain_points']:+.1f} | "
            f"{m['process_seconds']:.0f} | {m['train_seconds']:.0f} | {m['peak_memory_mb']:.0f} |"
        )
    if "grpo" in medians:
        g = medians["grpo"]
        lines += [
            "",
            (
                f"Default `grpo train` (GRPO): median gain {g['gain_points']:+.1f} points "
                f"(target >= {TARGET_GAIN_POINTS:.0f}), median process time {g['process_seconds']:.0f} s "
                f"(target <= {TARGET_SECONDS} s)."
            ),
        ]
    if "grpo" in medians and "ppo" in medians:
        g, p = medians["grpo"], medians["ppo"]
        lines.append(
            f"PPO beside GRPO: peak memory {p['peak_memory_mb']:.0f} vs {g['peak_memory_mb']:.0f} MiB "
            f"(GRPO uses {100 * (1 - g['peak_memory_mb'] / p['peak_memory_mb']):.0f}% less), training time "
            f"{p['train_seconds']:.0f} vs {g['train_seconds']:.0f} s."
        )
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: pathlib.Path) -> None:
    """Rollout reward (train tasks, sampled) against completions for every run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"grpo": "tab:blue", "ppo": "tab:orange"}
    fig, ax = plt.subplots(figsize=(7, 4))
    for r in rows:
        with open(pathlib.Path(r["run_dir"]) / "progress.csv", newline="") as handle:
            data = [row for row in csv.DictReader(handle) if row.get("rollout/reward_mean")]
        x = [float(d["time/total_timesteps"]) for d in data]
        y = [float(d["rollout/reward_mean"]) for d in data]
        window = max(1, len(y) // 15)
        smooth = [statistics.fmean(y[max(0, i - window + 1) : i + 1]) for i in range(len(y))]
        ax.plot(
            x,
            smooth,
            color=colours.get(r["algo"], "gray"),
            alpha=0.8,
            label=f"{r['algo'].upper()} seed {r['seed']}: held-out {r['before']:.0%} -> {r['after']:.0%}",
        )
    ax.set_xlabel("completions")
    ax.set_ylabel("rollout reward (running mean)")
    ax.set_title("grpo train (the main job), tiny policy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (one run per seed and algo)")
    parser.add_argument("--algos", nargs="+", default=["grpo", "ppo"], choices=["grpo", "ppo"])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads of each run")
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="runs at the same time (2 with --threads 1: GRPO and PPO of a seed side by side, "
        "under the same machine load)",
    )
    parser.add_argument("--train-args", default="", help="extra `grpo train` arguments, as one string")
    parser.add_argument("--out-dir", type=pathlib.Path, default=DEFAULT_OUT_DIR, help="where CSV/MD/PNG go")
    parser.add_argument(
        "--runs-dir", type=pathlib.Path, default=None, help="where run folders go (default: a temp dir)"
    )
    args = parser.parse_args()
    runs_dir = args.runs_dir or pathlib.Path(tempfile.mkdtemp(prefix="lm_grpo_vs_ppo-"))
    runs_dir.mkdir(parents=True, exist_ok=True)
    plan = [(algo, seed) for seed in args.seeds for algo in args.algos]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:  # threads only wait on the run processes
        rows = list(
            pool.map(lambda job: run_one(job[0], job[1], args.threads, runs_dir, shlex.split(args.train_args)), plan)
        )
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with open(args.out_dir / "lm_grpo_vs_ppo.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    command = "grpo train " + args.train_args if args.train_args else "grpo train"
    text = (
        f"# `{command}`: GRPO vs PPO, {len(args.seeds)} seeds\n\n"
        + tables(rows, args.algos)
        + f"\n\nMeasured on: {machine()}; {args.threads} torch thread(s) per run, {args.jobs} run(s) at a time.\n"
    )
    (args.out_dir / "lm_grpo_vs_ppo.md").write_text(text)
    plot(rows, args.out_dir / "lm_grpo_vs_ppo.png")
    print(text)


if __name__ == "__main__":
    main()
