"""`grpo tune` on Bandit-v0 variants, and the tuned setting against GRPO's documented Bandit
setting on variants the search never saw.

1. Runs the search of ``grpo tune`` (its default family: three Bandit-v0 reward tables, with 6
   or 8 arms and 8 or 16 contexts) for ``--trials`` trials of ``--budget`` completions per member.
2. Trains both settings (the best trial's, and docs/agent.md's ``lr=0.1, G=8, beta=0.04,
   clip_range=0.2``) on held-out variants (other table seeds, same shapes) with the same budget,
   and reports the exact fraction of the optimum reached and the completions needed to reach
   95% of it (checked every update).

Run::

    .venv/bin/python benchmarks/tune_bandit.py                  # 20 trials, 9 held-out variants
    .venv/bin/python benchmarks/tune_bandit.py --trials 40 --budget 2048

Writes ``tune_bandit.md``, ``tune_bandit.csv`` and ``tune_bandit.yaml`` (the tuned config)
under ``--out-dir``.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import time
from typing import Any

import gymnasium as gym
import optuna
import torch
from stable_baselines3.common.callbacks import BaseCallback

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _report

import grpo_envs  # noqa: F401 - registers the grpo/* ids
from grpo_agent import GRPO
from grpo_agent.common.evaluation import exact_expected_reward
from grpo_agent.run.tune_command import BANDIT_FAMILY, best_config
from grpo_agent.run.tuning import TuneSettings, tune

#: docs/agent.md's Bandit example (the setting the GRPO benchmarks use).
DOCUMENTED: dict[str, Any] = {"learning_rate": 0.1, "group_size": 8, "beta": 0.04, "clip_range": 0.2}


class FractionOfOptimum(BaseCallback):
    """The exact fraction of the optimum after every update, with the completions so far."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__()
        self.env, self.curve = env, []  # type: ignore[var-annotated]

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        optimum = float(self.env.unwrapped.optimal_expected_reward)  # type: ignore[attr-defined]
        value = exact_expected_reward(self.model.policy, self.env) / optimum
        self.curve.append((self.model.num_timesteps, value))


def held_out_family(n_seeds: int) -> list[dict[str, Any]]:
    """The family's shapes with table seeds the search never used (100, 101, ...)."""
    return [
        {**{k: v for k, v in member.items() if k != "table_seed"}, "table_seed": 100 + 10 * i + j}
        for i, member in enumerate(BANDIT_FAMILY)
        for j in range(n_seeds)
    ]


def evaluate(setting: dict[str, Any], env_kwargs: dict[str, Any], budget: int, seed: int) -> dict[str, Any]:
    """Train one setting on one variant; its final fraction of the optimum and samples to 95%."""
    env = gym.make("grpo/Bandit-v0", **env_kwargs)
    log = FractionOfOptimum(env)
    GRPO("tabular", env, seed=seed, **setting).learn(budget, log, log_interval=0)
    hit = next((n for n, v in log.curve if v >= 0.95), None)
    return {"final": log.curve[-1][1], "to_95": hit}


def main(argv: list[str] | None = None) -> int:
    """Search, then compare the tuned and documented settings on held-out variants."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument(
        "--budget", type=int, default=2048, help="completions per member per trial, and per comparison run"
    )
    parser.add_argument("--held-out-seeds", type=int, default=3, help="held-out table seeds per shape")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=pathlib.Path, default=pathlib.Path("benchmarks/results"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    settings = TuneSettings(env="grpo/Bandit-v0", family=BANDIT_FAMILY, budget=args.budget, seed=args.seed)
    t0 = time.perf_counter()
    study = tune(settings, args.trials)
    search_s = time.perf_counter() - t0
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    tuned = dict(study.best_params)
    rows = []
    for env_kwargs in held_out_family(args.held_out_seeds):
        for name, setting in (("documented", DOCUMENTED), ("tuned", tuned)):
            result = evaluate(setting, env_kwargs, args.budget, args.seed)
            rows.append({"setting": name, "variant": json.dumps(env_kwargs), **result})
    summary = []
    for name in ("documented", "tuned"):
        mine = [r for r in rows if r["setting"] == name]
        hits = [r["to_95"] for r in mine if r["to_95"] is not None]
        summary.append(
            [
                name,
                ", ".join(f"{k}={v:.3g}" for k, v in (DOCUMENTED if name == "documented" else tuned).items()),
                f"{statistics.fmean(r['final'] for r in mine):.3f} (min {min(r['final'] for r in mine):.3f})",
                f"{len(hits)}/{len(mine)}",
                f"{statistics.median(hits):,.0f}" if hits else "not reached",
            ]
        )
    text = (
        f"# grpo tune on Bandit-v0 variants: {args.trials} trials ({pruned} pruned), {args.budget:,} completions "
        f"per member, search {search_s:.0f} s\n\n"
        f"Searched on {BANDIT_FAMILY}; compared on {len(rows) // 2} held-out variants (the same shapes, table "
        f"seeds 100+), {args.budget:,} completions each, seed {args.seed}.\n\n"
        + _report.markdown_table(
            ["setting", "values", "mean fraction of optimum", "variants reaching 95%", "median completions to 95%"],
            summary,
        )
    )
    _report.publish(args.out_dir, "tune_bandit", text, rows, started)
    (args.out_dir / "tune_bandit.yaml").write_text(best_config(study, settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
