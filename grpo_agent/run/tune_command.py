"""``grpo tune``: search GRPO's hyperparameters across a family of tasks with Optuna, and write
the best setting as a YAML config in ``grpo train``'s option names (see :mod:`grpo_agent.run.tuning`)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import pathlib
from typing import Any

from grpo_agent.run.tuning import BASELINES, SEARCHABLE, TuneSettings, tune

#: The Bandit-v0 family ``grpo tune`` searches by default: three reward tables, with more arms
#: or more contexts than the default env.
BANDIT_FAMILY: list[dict[str, Any]] = [
    {"table_seed": 0},
    {"table_seed": 1, "n_actions": 8},
    {"table_seed": 2, "n_states": 16},
]
DEFAULT_TUNE_ENV = "grpo/Bandit-v0"


def add_tune_parser(sub: Any, formatter_class: type[argparse.HelpFormatter]) -> None:
    """The ``grpo tune`` subcommand."""
    tune_parser = sub.add_parser(
        "tune",
        help="search hyperparameters across a family of tasks (Optuna) and write the best as a config",
        description="Train GRPO with each trial's hyperparameters on every member of a family of envs, score "
        "each run (exact fraction of the optimum on grpo/Bandit-v0, else greedy held-out accuracy), "
        "prune trials that fall behind, and write the best setting as YAML in grpo train's option names. "
        "Needs the 'tune' extra (optuna).",
        formatter_class=formatter_class,
    )
    tune_parser.add_argument("--env", default=DEFAULT_TUNE_ENV, help="registered env id")
    tune_parser.add_argument(
        "--family",
        default=None,
        help="JSON list of env-kwargs objects, one per member of the task family (default for grpo/Bandit-v0: "
        + json.dumps(BANDIT_FAMILY)
        + "; else [{}], the env's defaults)",
    )
    tune_parser.add_argument(
        "--policy", default=None, help="'tabular' (default for Discrete envs), 'tiny' (default otherwise) or a model"
    )
    tune_parser.add_argument("--trials", type=int, default=20, help="trials to run")
    tune_parser.add_argument("--budget", type=int, default=2048, help="completions per member per trial")
    tune_parser.add_argument(
        "--checkpoints", type=int, default=4, help="scores per member, each reported to the pruner"
    )
    tune_parser.add_argument(
        "--params",
        nargs="+",
        default=None,
        choices=SEARCHABLE,
        help="what to search (default: all of them; temperature only for language-model policies)",
    )
    tune_parser.add_argument(
        "--fixed",
        default=None,
        help="JSON object of grpo train settings every trial uses, e.g. '{\"n_groups\": 8}'",
    )
    tune_parser.add_argument("--eval-tasks", type=int, default=100, help="held-out tasks per score (text envs)")
    tune_parser.add_argument("--seed", type=int, default=0, help="seed of the sampler and of every run")
    tune_parser.add_argument("--output", default="tuned.yaml", help="where the best setting is written (YAML)")
    tune_parser.add_argument(
        "--no-baseline",
        action="store_true",
        help="do not run plain GRPO's setting as trial 0 (by default it is, so the search reports it on the "
        "same budget and never returns anything worse)",
    )


def _json(text: str | None, kind: type, example: str, flag: str) -> Any:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{flag} is not JSON ({exc}): give {example}") from None
    if not isinstance(value, kind):
        raise ValueError(f"{flag} must be {example}, got {text!r}")  # noqa: TRY004 - bad input text, one sentence
    return value


def tune_settings(args: argparse.Namespace) -> TuneSettings:
    """The search an argument list describes.

    :raises ValueError: with one sentence saying what is wrong.
    """
    import gymnasium as gym

    import grpo_envs  # noqa: F401 - registers the grpo/* ids
    from grpo_envs.core import TextBanditEnv

    try:
        spec = gym.spec(args.env)
    except gym.error.Error:
        raise ValueError(f"unknown env id {args.env!r}") from None
    family = _json(args.family, list, 'a list such as \'[{"table_seed": 0}, {"table_seed": 1}]\'', "--family")
    if family is None:
        family = BANDIT_FAMILY if args.env == DEFAULT_TUNE_ENV else [{}]
    if not all(isinstance(member, dict) for member in family):
        raise ValueError(f"--family must be a list of JSON objects (env arguments), got {args.family!r}")
    fixed = _json(args.fixed, dict, "an object such as '{\"n_groups\": 8}'", "--fixed") or {}
    entry: Any = spec.entry_point
    if isinstance(entry, str):
        module, attr = entry.split(":")
        entry = getattr(__import__(module, fromlist=[attr]), attr)
    text_env = isinstance(entry, type) and issubclass(entry, TextBanditEnv)
    policy = args.policy or ("tiny" if text_env else "tabular")
    if policy != "tabular" and not text_env:
        raise ValueError(f"{args.env} is not a text env: tune it with --policy tabular")
    params = args.params or [p for p in SEARCHABLE if policy != "tabular" or p != "temperature"]
    if args.trials < 1:
        raise ValueError(f"--trials must be at least 1, got {args.trials}")
    return TuneSettings(
        env=args.env, family=family, policy=policy, budget=args.budget, checkpoints=args.checkpoints,
        params=params, fixed=fixed, eval_tasks=args.eval_tasks, seed=args.seed,
        baseline=None if args.no_baseline else BASELINES["tabular" if policy == "tabular" else "lm"],
    )  # fmt: skip


def tune_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with a ``grpo tune`` command line, in one sentence (None: nothing)."""
    if importlib.util.find_spec("optuna") is None:
        return "needs Optuna: pip install 'grpo-gym[tune]'"
    try:
        tune_settings(args)
    except ValueError as exc:
        return str(exc)
    return None


def best_config(study: Any, settings: TuneSettings) -> str:
    """The best trial's settings as YAML (``grpo train``'s option names), with a comment saying
    where they come from."""
    import optuna
    import yaml

    states = [t.state for t in study.trials]
    pruned = sum(s == optuna.trial.TrialState.PRUNED for s in states)
    header = (
        f"# grpo tune: best of {len(states)} trials ({pruned} pruned) on {settings.env}, family "
        f"{json.dumps(settings.family)}; {settings.budget} completions per member, policy {settings.policy}; "
        f"mean score {study.best_value:.4f} (trial {study.best_trial.number})\n"
    )
    return header + yaml.safe_dump(dict(study.best_params), sort_keys=False)


def cmd_tune(args: argparse.Namespace) -> int:
    """Run the search, print every trial as it ends, write the best setting."""
    settings = tune_settings(args)

    def report(_study: Any, trial: Any) -> None:
        value = "" if trial.value is None else f"{trial.value:.4f}"
        state = f"trial {trial.number:3d} {trial.state.name:9s} {value:>7s} after {len(trial.intermediate_values)}"
        note = " (plain GRPO's setting)" if trial.number == 0 and settings.baseline is not None else ""
        print(f"{state} checkpoint(s) {trial.params}{note}", flush=True)

    study = tune(settings, args.trials, on_trial=report)
    text = best_config(study, settings)
    output = pathlib.Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    print(text, end="")
    print(f"wrote {output}")
    return 0
