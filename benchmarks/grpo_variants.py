"""GRPO's variants side by side, one table: samples to 95% of the optimum on Bandit-v0 and
held-out gain on the main job, over seeds.

- **Bandit-v0.** Every variant runs grpo_vs_ppo.py's Bandit job (the tabular policy, the exact
  expected reward after every update, each run in its own process) at GRPO's settings from that
  table with PPO's update schedule (10 epochs of minibatches of 64, where ratios leave 1 and the
  clipping variants differ), changing one knob: the advantage estimator (RLOO, REINFORCE++
  baseline, pass@k), the token aggregation (Dr. GRPO, DAPO), the importance ratio (GSPO,
  GSPO-token), the policy loss (dual-clip, CISPO), the entropy terms or the reward shaping.
- **The main job.** Every variant runs ``grpo train`` (docs/lm.md, "The main job") with its knob
  as the flag of the same name, everything else the command's defaults. All variants of a seed
  start from that seed's one warm start (one cache per seed, written by the first variant's
  run), so a variant's gain minus GRPO's gain on the same seed compares them from the very same
  weights. The main job trains one epoch of one minibatch per rollout: the importance ratio is
  exactly 1 at every step, where GSPO, GSPO-token, dual-clip and CISPO have GRPO's gradient
  (``tests/test_variants.py``), so those rows differ from GRPO's by float rounding only.

``grpo_passk`` optimises pass@k, so pass@1 (what both targets measure) is not its objective;
docs/agent.md explains every variant. Every run is kept under ``--runs-dir`` (Bandit: one JSON
per run; main job: the run folder): running the command again skips what has finished and
renders the table from everything there, so an interrupted run resumes.

Run::

    .venv/bin/python benchmarks/grpo_variants.py --jobs 2          # Bandit-v0, then 30 main-job runs (hours)
    .venv/bin/python benchmarks/grpo_variants.py --parts bandit    # Bandit-v0 only (~5 min)
    .venv/bin/python benchmarks/grpo_variants.py --render          # only re-render from --runs-dir

Writes ``grpo_variants.md`` (the table), ``grpo_variants.csv`` (the Bandit curves) and
``grpo_variants_main_job.csv`` (one row per main-job run) under ``--out-dir``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import re
import shlex
import shutil
import statistics
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _isolate
import _report
import grpo_vs_ppo as base
import main_job

#: GRPO's Bandit settings with PPO's update schedule (grpo_vs_ppo.py's second GRPO row).
COMMON: dict[str, Any] = {
    "learning_rate": 0.1, "group_size": 8, "n_groups": 16, "beta": 0.04, "n_epochs": 10, "batch_size": 64,
}  # fmt: skip

#: Variant name -> the one knob it changes (GRPO's keyword arguments; ``grpo train`` has a flag
#: of the same name for each). The order is the main job's queue: the variants users compare
#: most come first, so a run cut short loses the others.
VARIANTS: dict[str, dict[str, Any]] = {
    "GRPO": {},
    "Dr. GRPO aggregation (loss_type='dr_grpo')": {"loss_type": "dr_grpo"},
    "DAPO aggregation (loss_type='dapo')": {"loss_type": "dapo"},
    "RLOO (advantage_estimator='rloo')": {"advantage_estimator": "rloo"},
    "REINFORCE++ baseline": {"advantage_estimator": "reinforce_plus_plus_baseline"},
    "GSPO (importance_sampling_level='sequence')": {"importance_sampling_level": "sequence"},
    "entropy bonus (entropy_coef=0.01)": {"entropy_coef": 0.01},
    "top 20% entropy tokens (top_entropy_quantile=0.2)": {"top_entropy_quantile": 0.2},
    # DAPO's buffer is a fifth of its limit (4,096 of 20,480 tokens); the main job's is 16.
    "overlong shaping (overlong_buffer_len=4)": {"overlong_buffer_len": 4},
    "pass@k (advantage_estimator='grpo_passk')": {"advantage_estimator": "grpo_passk"},
    "CISPO (policy_loss='cispo', clip_range_high=0.28)": {"policy_loss": "cispo", "clip_range_high": 0.28},
    "dual-clip (dual_clip=3)": {"dual_clip": 3.0},
    "GSPO-token": {"importance_sampling_level": "sequence_token"},
}

#: Variants that mean nothing on Bandit-v0's one-token actions, and why (the table says so).
NOT_ON_BANDIT = {
    "overlong shaping (overlong_buffer_len=4)": "n/a: every action is one token long",
}

#: Variants that train GRPO's very weights on the main job, which the main job therefore does
#: not run by default: with one epoch of one minibatch the ratio is exactly 1, and their loss
#: multiplies GRPO's gradient by exactly 1 (``tests/test_variants.py`` checks it bit for bit).
#: GSPO's sequence ratio goes through a mean and an exp, so it differs by float rounding: its
#: row shows how far rounding alone moves a run.
SAME_AS_GRPO_ON_MAIN_JOB = {
    "CISPO (policy_loss='cispo', clip_range_high=0.28)",
    "dual-clip (dual_clip=3)",
    "GSPO-token",
}

# The runs go through grpo_vs_ppo's Bandit job, which looks agents up in its own table; the
# worker process imports this script, so the variants are registered there too.
for _name, _knob in VARIANTS.items():
    base.BANDIT_AGENTS[_name] = ("grpo", {**COMMON, **_knob})


def slug(name: str) -> str:
    """A variant's name as a file name, e.g. ``"dual-clip (dual_clip=3)"`` -> ``"dual-clip-dual-clip-3"``."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def cli_flags(knob: dict[str, Any]) -> list[str]:
    """The ``grpo train`` flags that set a variant's knob, e.g. ``["--dual-clip", "3.0"]``."""
    return [arg for key, value in knob.items() for arg in (f"--{key.replace('_', '-')}", str(value))]


# -- Bandit-v0 ------------------------------------------------------------------------------------


def bandit_run(name: str, seed: int, args: argparse.Namespace) -> base.RunResult:
    """One Bandit-v0 run, read back from ``--runs-dir`` when it has already finished."""
    path = args.runs_dir / "bandit" / f"{slug(name)}-seed{seed}-budget{args.budget}.json"
    if path.exists():
        fields = json.loads(path.read_text(encoding="utf-8"))
        return base.RunResult(**{k: [tuple(x) for x in v] if isinstance(v, list) else v for k, v in fields.items()})
    result = base.run(
        "bandit", name, seed, args.target, {"budget": args.budget}, isolate=not args.no_isolate, script=__file__
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dataclasses.asdict(result)), encoding="utf-8")
    print(f"{name}, seed {seed}: samples to target {result.samples_to_target}, final {result.final:.3f}", flush=True)
    return result


# -- the main job ---------------------------------------------------------------------------------


def main_job_folder(name: str, seed: int, args: argparse.Namespace) -> pathlib.Path:
    return args.runs_dir / "main_job" / f"{slug(name)}-seed{seed}"


def finished_summary(folder: pathlib.Path) -> dict[str, Any] | None:
    """A run folder's ``summary.json`` if the run finished, else None."""
    path = folder / "summary.json"
    summary = json.loads(path.read_text()) if path.exists() else None
    return summary if summary and summary.get("status") == "finished" else None


def main_job_run(name: str, seed: int, args: argparse.Namespace) -> None:
    """``grpo train`` with the variant's flags from the seed's shared warm-start cache; a
    folder left by an interrupted run is removed and the run starts again."""
    folder = main_job_folder(name, seed, args)
    if finished_summary(folder) is not None:
        return
    shutil.rmtree(folder, ignore_errors=True)
    flags = [*cli_flags(VARIANTS[name]), *shlex.split(args.main_job_args)]
    summary, _ = main_job._cli(
        [*flags, "--seed", str(seed), "--output", str(folder), "--eval-every", "0"],
        args.runs_dir / "main_job" / f"cache-seed{seed}",
        args.threads,
    )
    print(f"  {name}, seed {seed}: held-out gain {summary['heldout_gain_points']:+.1f} points", flush=True)


def run_main_job(names: list[str], args: argparse.Namespace) -> None:
    """Every variant on every seed, ``--jobs`` at a time; the first variant of each seed runs
    first and writes the warm start that the seed's other runs then load."""
    first, others = names[0], names[1:]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        warm: dict[int, Future[None]] = {s: pool.submit(main_job_run, first, s, args) for s in args.seeds}

        def after_warm_start(name: str, seed: int) -> None:
            warm[seed].result()  # submitted first, so it is running or done: no deadlock
            main_job_run(name, seed, args)

        rest = [pool.submit(after_warm_start, name, s) for name in others for s in args.seeds]
        for future in [*warm.values(), *rest]:
            future.result()


def main_job_rows(names: list[str], args: argparse.Namespace) -> list[dict[str, Any]]:
    """One row per finished main-job run under ``--runs-dir`` (main_job.py's columns)."""
    rows = []
    for name in names:
        for seed in args.seeds:
            folder = main_job_folder(name, seed, args)
            summary = finished_summary(folder)
            if summary is not None:
                rows.append(main_job.cli_row(name, seed, folder, summary, summary["wall_seconds"], 0.5))
    befores: dict[int, set[float]] = {}
    for row in rows:
        befores.setdefault(row["seed"], set()).add(row["before"])
    shared = {seed: b for seed, b in befores.items() if len(b) > 1}
    if shared:
        raise SystemExit(
            f"main-job runs of one seed start from different warm starts (held-out before: {shared}); "
            "delete --runs-dir's main_job folder and run again"
        )
    return rows


# -- the table ------------------------------------------------------------------------------------


def table(names: list[str], bandit: list[base.RunResult], rows: list[dict[str, Any]]) -> str:
    """One row per variant: Bandit-v0 samples to target, main-job held-out gain and its
    difference from GRPO's gain on the same seed (medians, then per seed in seed order)."""
    header = [
        "variant",
        "Bandit-v0: samples to 95% (median)",
        "per seed",
        "main job: held-out gain, points (median)",
        "per seed",
        "gain minus GRPO's, same seed (median)",
        "per seed",
    ]
    grpo_gain = {r["seed"]: r["gain_points"] for r in rows if r["arm"] == "GRPO"}
    lines = []
    for name in names:
        mine = [r for r in bandit if r.agent == name]
        if name in NOT_ON_BANDIT:
            bandit_cells = [NOT_ON_BANDIT[name], ""]
        elif mine:
            steps = [r.samples_to_target for r in mine]
            bandit_cells = [base._fmt(base._median(steps)), ", ".join(base._fmt(s) for s in steps)]
        else:
            bandit_cells = ["not run", ""]
        runs = [r for r in rows if r["arm"] == name]
        if not runs and name in SAME_AS_GRPO_ON_MAIN_JOB:
            lines.append([name, *bandit_cells, "= GRPO, bit for bit (ratio 1)", "", "", ""])
            continue
        diffs = [r["gain_points"] - grpo_gain[r["seed"]] for r in runs if r["seed"] in grpo_gain]
        if runs:
            gains = [r["gain_points"] for r in runs]
            job_cells = [
                f"{statistics.median(gains):+.1f}",
                ", ".join(f"{g:+.1f}" for g in gains),
                f"{statistics.median(diffs):+.1f}" if diffs and name != "GRPO" else "",
                ", ".join(f"{d:+.1f}" for d in diffs) if name != "GRPO" else "",
            ]
        else:
            job_cells = ["not run", "", "", ""]
        lines.append([name, *bandit_cells, *job_cells])
    return _report.markdown_table(header, lines)


def report(names: list[str], bandit: list[base.RunResult], rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    """The markdown: what ran, the table, the warm starts and the machine."""
    seeds = sorted({r.seed for r in bandit} | {r["seed"] for r in rows})
    warm = {r["seed"]: r["before"] for r in rows}
    extra = f" plus `{args.main_job_args}`" if args.main_job_args else ""
    # Training time is left out: on a shared machine it measures the neighbours' load more than
    # the variant (each run's own time is in its summary.json).
    when = (
        "Rendered from the runs in --runs-dir"
        if args.render
        else f"Measured with {args.threads} torch thread(s) per main-job run, {args.jobs} run(s) at a time"
    )
    return (
        f"# GRPO variants: Bandit-v0 and the main job, seeds {', '.join(map(str, seeds))}\n\n"
        f"Bandit-v0: budget {args.budget:,} completions, target {args.target:.0%} of the optimal expected "
        f"reward; settings {COMMON}. Main job: `grpo train --seed S --eval-every 0`{extra} with each variant's "
        "flag, every variant of a seed from that seed's warm start (held-out greedy accuracy before: "
        + ", ".join(f"seed {s} {warm[s]:.1%}" for s in sorted(warm))
        + f").\n\n{table(names, bandit, rows)}\n\n{when}: {_report.machine_description()}.\n"
    )


def main(argv: list[str] | None = None) -> int:
    """Run what has not finished yet, print and write the table."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--parts", nargs="+", default=["bandit", "main_job"], choices=["bandit", "main_job"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of every variant")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), metavar="NAME")
    parser.add_argument(
        "--main-job-variants",
        nargs="+",
        default=[n for n in VARIANTS if n not in SAME_AS_GRPO_ON_MAIN_JOB],
        choices=list(VARIANTS),
        metavar="NAME",
        help="the variants run on the main job (default: all but those that train GRPO's very weights there)",
    )
    parser.add_argument("--budget", type=int, default=8192, help="Bandit env steps per run")
    parser.add_argument("--target", type=float, default=0.95, help="Bandit: fraction of the optimal expected reward")
    parser.add_argument("--no-isolate", action="store_true", help="Bandit runs in this process (shared peak memory)")
    parser.add_argument("--threads", type=int, default=1, help="main job: torch CPU threads per run")
    parser.add_argument("--jobs", type=int, default=1, help="main job: runs at the same time")
    parser.add_argument(
        "--main-job-args",
        default="",
        help="main job: more `grpo train` flags for every run (the table shows them; give a fresh --runs-dir)",
    )
    parser.add_argument("--runs-dir", type=pathlib.Path, default=main_job.ROOT / "runs" / "grpo_variants")
    parser.add_argument("--out-dir", type=pathlib.Path, default=_report.DEFAULT_OUT_DIR)
    parser.add_argument("--render", action="store_true", help="run nothing: render what --runs-dir holds")
    args = parser.parse_args(argv)
    if args.worker:
        _isolate.worker_main(args.worker, base._worker)
        return 0

    names = [n for n in VARIANTS if n in args.variants]
    on_main_job = [n for n in names if n in args.main_job_variants] if "main_job" in args.parts else []
    on_bandit = [n for n in names if n not in NOT_ON_BANDIT] if "bandit" in args.parts else []
    if not args.render:
        for name in on_bandit:
            for seed in args.seeds:
                bandit_run(name, seed, args)
        if on_main_job:
            run_main_job(on_main_job, args)
    done = [
        (n, s)
        for n in on_bandit
        for s in args.seeds
        if (args.runs_dir / "bandit" / f"{slug(n)}-seed{s}-budget{args.budget}.json").exists()
    ]
    bandit = [bandit_run(n, s, args) for n, s in done]
    rows = main_job_rows(on_main_job, args)
    text = report(names, bandit, rows, args)
    print(text)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "grpo_variants.md").write_text(text, encoding="utf-8")
    _report.write_csv(args.out_dir / "grpo_variants.csv", base.csv_rows(bandit))
    _report.write_csv(args.out_dir / "grpo_variants_main_job.csv", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
