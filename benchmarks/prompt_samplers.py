"""Prompt samplers against uniform draws on grpo/Math-v0 with mixed levels, over seeds.

Every run warm-starts the tiny policy on a mix of levels (by default 1 and 6: one-step
arithmetic on small numbers and two-digit column arithmetic; the main job's rule, SFT until 30%
greedy accuracy), then trains GRPO with one prompt sampler and measures greedy accuracy
on held-out questions (the ``test`` split, same levels) every ``--eval-every`` updates. Per run:

- completions to the held-out target: the first evaluation whose accuracy is at least the warm
  start's plus ``--gain`` points (empty when the budget ends first);
- the fraction of zero-std groups among the groups sampled (``rollout/frac_zero_std``: the
  groups that carry no learning signal);
- the final held-out accuracy.

Every sampler of a seed starts from the same warm start (the cache holds it), so the table
compares samplers on the same starting model.

Run::

    .venv/bin/python benchmarks/prompt_samplers.py                   # 3 seeds, every sampler
    .venv/bin/python benchmarks/prompt_samplers.py --seeds 0 --budget 2048

Writes ``prompt_samplers.md`` and ``prompt_samplers.csv`` under ``--out-dir``.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.callbacks import BaseCallback

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _report

import grpo_envs  # noqa: F401 - registers the grpo/* ids
from grpo_agent import GRPO
from grpo_agent.common.prompt_samplers import DifficultyPromptSampler, PromptSampler, make_prompt_sampler
from grpo_agent.run.accuracy import evaluate_accuracy

#: Sampler name -> how to build it (a fresh one per run: samplers keep per-task history).
SAMPLERS: dict[str, Any] = {
    "uniform": lambda: make_prompt_sampler("uniform"),
    "difficulty": lambda: make_prompt_sampler("difficulty"),
    "difficulty + curriculum": lambda: DifficultyPromptSampler(curriculum=True),
    "similarity (level)": lambda: make_prompt_sampler("similarity"),
}


class ZeroStdLog(BaseCallback):
    """Keeps every rollout's ``rollout/frac_zero_std``."""

    def __init__(self) -> None:
        super().__init__()
        self.values: list[float] = []

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self.values.append(float(self.logger.name_to_value["rollout/frac_zero_std"]))


def run_one(sampler: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """One GRPO run with ``sampler``: held-out accuracy every ``eval_every`` updates."""
    env_kwargs = {"levels": tuple(args.levels), "num_tasks": args.num_tasks, "prompt_template": "{question}"}
    env = gym.make("grpo/Math-v0", **env_kwargs)
    held_out = gym.make("grpo/Math-v0", **{**env_kwargs, "split": "test"})
    built: PromptSampler = SAMPLERS[sampler]()
    sft = {"steps": args.sft_steps, "target_accuracy": args.sft_target or None}
    model = GRPO(
        "tiny", env, learning_rate=2e-4, group_size=args.group_size, n_groups=args.n_groups, beta=0.04,
        prompt_sampler=built, seed=seed,
        policy_kwargs={"sft_config": sft, "seed": seed},
    )  # fmt: skip
    start_acc = evaluate_accuracy(model, held_out, args.eval_tasks).accuracy
    target = start_acc + args.gain / 100
    per_update = args.group_size * args.n_groups
    zero_std = ZeroStdLog()
    curve = [(0, start_acc)]
    reached: int | None = None
    start = time.perf_counter()
    while model.num_timesteps < args.budget:
        model.learn(args.eval_every * per_update, zero_std, reset_num_timesteps=False, log_interval=0)
        acc = evaluate_accuracy(model, held_out, args.eval_tasks).accuracy
        curve.append((model.num_timesteps, acc))
        if reached is None and acc >= target:
            reached = model.num_timesteps
    return {
        "sampler": sampler,
        "seed": seed,
        "start_accuracy": round(start_acc, 4),
        "target": round(target, 4),
        "completions_to_target": reached,
        "final_accuracy": round(curve[-1][1], 4),
        "best_accuracy": round(max(a for _, a in curve), 4),
        "frac_zero_std": round(statistics.fmean(zero_std.values), 4),
        "completions": model.num_timesteps,
        "seconds": round(time.perf_counter() - start, 1),
        "curve": " ".join(f"{n}:{a:.3f}" for n, a in curve),
    }


def main(argv: list[str] | None = None) -> int:
    """Run every sampler on every seed, print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--samplers", nargs="+", default=list(SAMPLERS), choices=list(SAMPLERS), metavar="NAME")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 6], help="Math-v0 levels mixed")
    parser.add_argument("--num-tasks", type=int, default=3000, help="training questions")
    parser.add_argument("--sft-steps", type=int, default=2000, help="the tiny policy's warm start, at most")
    parser.add_argument(
        "--sft-target",
        type=float,
        default=0.3,
        help="warm start until this greedy accuracy (the main job's rule; 0: a fixed --sft-steps)",
    )
    parser.add_argument("--budget", type=int, default=6144, help="completions per run")
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--n-groups", type=int, default=8)
    parser.add_argument("--eval-every", type=int, default=8, help="updates between held-out evaluations")
    parser.add_argument("--eval-tasks", type=int, default=200, help="held-out questions per evaluation")
    parser.add_argument("--gain", type=float, default=5.0, help="target: warm-start accuracy + this many points")
    parser.add_argument("--out-dir", type=pathlib.Path, default=pathlib.Path("benchmarks/results"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = []
    for seed in args.seeds:
        for sampler in args.samplers:
            row = run_one(sampler, seed, args)
            print(row, flush=True)
            rows.append(row)
    summary = []
    for sampler in args.samplers:
        mine = [r for r in rows if r["sampler"] == sampler]
        hits = [r["completions_to_target"] for r in mine if r["completions_to_target"] is not None]
        summary.append(
            [
                sampler,
                f"{len(hits)}/{len(mine)}",
                f"{statistics.median(hits):,.0f}" if hits else "not reached",
                f"{statistics.fmean(r['frac_zero_std'] for r in mine):.3f}",
                f"{statistics.fmean(r['final_accuracy'] - r['start_accuracy'] for r in mine) * 100:+.1f}",
            ]
        )
    detail = [
        [r["sampler"], r["seed"], f"{r['start_accuracy']:.1%}", f"{r['target']:.1%}",
         r["completions_to_target"] or "not reached", f"{r['final_accuracy']:.1%}", f"{r['frac_zero_std']:.3f}",
         r["seconds"]]
        for r in rows
    ]  # fmt: skip
    text = (
        f"# Prompt samplers on grpo/Math-v0 levels {args.levels}, seeds {args.seeds}\n\n"
        f"Budget {args.budget:,} completions per run ({args.n_groups} prompts x {args.group_size} per update), "
        f"tiny policy warm-started to {args.sft_target:.0%} greedy accuracy "
        f"(at most {args.sft_steps} SFT steps), held-out target = warm start + {args.gain:g} points "
        f"of greedy accuracy on {args.eval_tasks} test questions, evaluated every {args.eval_every} updates.\n\n"
        + _report.markdown_table(
            [
                "sampler",
                "runs reaching target",
                "median completions to target",
                "mean frac zero-std groups",
                "mean held-out gain (points)",
            ],
            summary,
        )
        + "\n\n"
        + _report.markdown_table(
            ["sampler", "seed", "start", "target", "completions to target", "final", "frac zero-std", "s"], detail
        )
    )
    _report.publish(args.out_dir, "prompt_samplers", text, rows, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
