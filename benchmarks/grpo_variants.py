"""GRPO's variants side by side on Bandit-v0: samples to 95% of the optimum, over seeds.

Every variant runs grpo_vs_ppo.py's Bandit job (the tabular policy, the exact expected reward
after every update, each run in its own process) at GRPO's settings from that table with
PPO's update schedule (10 epochs of minibatches of 64, where ratios leave 1 and the clipping
variants differ), changing one knob: the advantage estimator (RLOO, REINFORCE++ baseline,
pass@k), the importance ratio (GSPO, GSPO-token), the policy loss (dual-clip, CISPO), or the
entropy terms. ``grpo_passk`` optimises pass@k, so pass@1 (what the target measures) is not
its objective; docs/agent.md explains every variant.

Run::

    .venv/bin/python benchmarks/grpo_variants.py                 # 3 seeds
    .venv/bin/python benchmarks/grpo_variants.py --seeds 0 1 2 3 4 --budget 8192

Writes ``grpo_variants.md`` and ``grpo_variants.csv`` under ``--out-dir``.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _isolate
import _report
import grpo_vs_ppo as base

#: GRPO's Bandit settings with PPO's update schedule (grpo_vs_ppo.py's second GRPO row).
COMMON: dict[str, Any] = {
    "learning_rate": 0.1, "group_size": 8, "n_groups": 16, "beta": 0.04, "n_epochs": 10, "batch_size": 64,
}  # fmt: skip

#: Variant name -> the one knob it changes.
VARIANTS: dict[str, dict[str, Any]] = {
    "GRPO": {},
    "RLOO (advantage_estimator='rloo')": {"advantage_estimator": "rloo"},
    "REINFORCE++ baseline": {"advantage_estimator": "reinforce_plus_plus_baseline"},
    "pass@k (advantage_estimator='grpo_passk')": {"advantage_estimator": "grpo_passk"},
    "GSPO (importance_sampling_level='sequence')": {"importance_sampling_level": "sequence"},
    "GSPO-token": {"importance_sampling_level": "sequence_token"},
    "dual-clip (dual_clip=3)": {"dual_clip": 3.0},
    "CISPO (policy_loss='cispo', clip_range_high=0.28)": {"policy_loss": "cispo", "clip_range_high": 0.28},
    "entropy bonus (entropy_coef=0.01)": {"entropy_coef": 0.01},
    "top 20% entropy tokens (top_entropy_quantile=0.2)": {"top_entropy_quantile": 0.2},
}

# The runs go through grpo_vs_ppo's Bandit job, which looks agents up in its own table; the
# worker process imports this script, so the variants are registered there too.
for _name, _knob in VARIANTS.items():
    base.BANDIT_AGENTS[_name] = ("grpo", {**COMMON, **_knob})


def main(argv: list[str] | None = None) -> int:
    """Run every variant on every seed, print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of every variant")
    parser.add_argument("--budget", type=int, default=8192, help="Bandit env steps per run")
    parser.add_argument("--target", type=float, default=0.95, help="fraction of the optimal expected reward")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), metavar="NAME")
    parser.add_argument("--out-dir", type=pathlib.Path, default=pathlib.Path("benchmarks/results"))
    parser.add_argument("--no-isolate", action="store_true", help="run in this process (peak memory is shared)")
    args = parser.parse_args(argv)
    if args.worker:
        _isolate.worker_main(args.worker, base._worker)
        return 0

    runs = []
    for name in args.variants:
        for seed in args.seeds:
            result = base.run(
                "bandit", name, seed, args.target, {"budget": args.budget}, isolate=not args.no_isolate, script=__file__
            )
            print(f"{name}, seed {seed}: samples to target {result.samples_to_target}, final {result.final:.3f}")
            runs.append(result)
    table = base.detail_table(runs, args.variants, "fraction of optimum")
    text = (
        f"# GRPO variants on Bandit-v0\n\n{_report.machine_description()}\n\n"
        f"Budget {args.budget:,} completions, target {args.target:.0%} of the optimal expected reward, "
        f"seeds {args.seeds}; settings {COMMON}.\n\n{table}\n"
    )
    print(text)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "grpo_variants.md").write_text(text, encoding="utf-8")
    _report.write_csv(args.out_dir / "grpo_variants.csv", base.csv_rows(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
