"""Hyperparameters learned across a family of tasks: an Optuna search over GRPO's knobs.

The design's "meta-learning GRPO" is an outer loop over a task distribution. Here the outer loop
is a hyperparameter search (Optuna's TPE sampler, Akiba et al. 2019, "Optuna", KDD): every trial
trains GRPO with one setting on each member of a family of envs (e.g. Bandit-v0 with different
reward tables and numbers of arms), and its value is the mean score over the family. The
score is measured ``checkpoints`` times while each member trains and reported to Optuna as an
intermediate value (the mean over what the trial has measured so far), so a median pruner stops
trials that fall behind the others at the same point, before they spend their whole budget.

Score of one member: the exact expected reward as a fraction of the optimum for an env that can
compute it (``grpo/Bandit-v0``, with the tabular policy); otherwise greedy held-out accuracy
(the ``test`` split when the env has one) of a language-model policy, the number ``grpo train``
reports.

Searched (each optional): ``learning_rate`` (log-uniform), ``beta``, ``group_size``,
``clip_range``, and ``temperature`` (language-model policies only: the tabular policy samples
its softmax as is). The names are ``grpo train``'s option names (their ``dest``), so the best
setting is written as a config that ``grpo train`` reads.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Everything :func:`tune` can search, in ``grpo train``'s option names.
SEARCHABLE = ("learning_rate", "beta", "group_size", "clip_range", "temperature")
#: The learning-rate range per kind of policy: the tabular softmax learns at ~0.05-0.1
#: (docs/agent.md), the tiny model at ~2e-4 (grpo_agent/run/settings.py).
LEARNING_RATE_RANGE = {"tabular": (1e-3, 1.0), "lm": (1e-5, 1e-3)}
#: group sizes tried (TRL's default 8, and one step either way).
GROUP_SIZES = (4, 8, 16)
#: Plain GRPO's settings, the first trial of ``grpo tune``: docs/agent.md's Bandit setting for the
#: tabular policy, ``grpo train``'s defaults for language models (the tiny model's learning rate).
BASELINES = {
    "tabular": {"learning_rate": 0.1, "beta": 0.04, "group_size": 8, "clip_range": 0.2},
    "lm": {"learning_rate": 2e-4, "beta": 0.04, "group_size": 8, "clip_range": 0.2, "temperature": 1.0},
}


@dataclass
class TuneSettings:
    """What one search runs.

    :param env: registered env id.
    :param family: env keyword arguments of each member of the task family (at least one).
    :param policy: ``"tabular"`` (Discrete envs) or a language-model policy (``"tiny"``, a model folder).
    :param budget: completions per member per trial.
    :param checkpoints: scores measured (and reported to the pruner) per member.
    :param params: which of :data:`SEARCHABLE` to search; the others keep ``fixed`` or the defaults.
    :param fixed: ``grpo train`` settings that every trial uses (e.g. ``n_groups``, ``sft``).
    :param eval_tasks: held-out tasks per score (language-model policies).
    :param seed: seed of the sampler and of every trial's runs.
    :param baseline: a setting run as the first trial (e.g. plain GRPO's documented one), so the
        search reports it under the same budget and seeds and never returns anything worse; None: none.
    """

    env: str
    family: list[dict[str, Any]]
    policy: str = "tabular"
    budget: int = 2048
    checkpoints: int = 4
    params: Sequence[str] = ("learning_rate", "beta", "group_size", "clip_range")
    fixed: dict[str, Any] = field(default_factory=dict)
    eval_tasks: int = 100
    seed: int = 0
    baseline: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.params) - set(SEARCHABLE))
        if unknown:
            raise ValueError(f"cannot search {unknown}; searchable: {', '.join(SEARCHABLE)}")
        if self.policy == "tabular" and "temperature" in self.params:
            raise ValueError("the tabular policy has no sampling temperature: leave temperature out of the search")
        if not self.family:
            raise ValueError("the task family needs at least one member (a JSON list of env-kwargs objects)")
        if self.budget < 1 or self.checkpoints < 1:
            raise ValueError(f"need budget >= 1 and checkpoints >= 1, got {self.budget} and {self.checkpoints}")


def suggest(trial: Any, settings: TuneSettings) -> dict[str, Any]:
    """One trial's hyperparameters, in ``grpo train``'s option names."""
    low, high = LEARNING_RATE_RANGE["tabular" if settings.policy == "tabular" else "lm"]
    space: dict[str, Callable[[], Any]] = {
        "learning_rate": lambda: trial.suggest_float("learning_rate", low, high, log=True),
        "beta": lambda: trial.suggest_float("beta", 0.0, 0.2),
        "group_size": lambda: trial.suggest_categorical("group_size", list(GROUP_SIZES)),
        "clip_range": lambda: trial.suggest_float("clip_range", 0.1, 0.4),
        "temperature": lambda: trial.suggest_float("temperature", 0.6, 1.4),
    }
    return {name: space[name]() for name in settings.params}


class _Member:
    """One member of the family with one trial's hyperparameters: trains in chunks, scores after each."""

    def __init__(self, settings: TuneSettings, env_kwargs: dict[str, Any], hyper: dict[str, Any]) -> None:
        import gymnasium as gym

        import grpo_envs  # noqa: F401 - registers the grpo/* ids

        self.env = gym.make(settings.env, **env_kwargs)
        if settings.policy == "tabular":
            from grpo_agent.grpo import GRPO

            options = {k: v for k, v in {**settings.fixed, **hyper}.items() if k != "temperature"}
            self.model: Any = GRPO("tabular", self.env, seed=settings.seed, **options)
            self.held_out = None
        else:
            from grpo_agent.cli import build_parser
            from grpo_agent.run.settings import build_algorithm, build_policy, resolve_env_kwargs, settings_from_args

            # The member's settings are those of `grpo train` with the same env (an empty member
            # is the env's default arguments: the main job's, on its env), then the trial's values.
            given = json.dumps(env_kwargs) if env_kwargs else None
            argv = ["train", "--env", settings.env, "--policy", settings.policy]
            train = settings_from_args(build_parser().parse_args(argv + (["--env-kwargs", given] if given else [])))
            for name, value in {**settings.fixed, **hyper, "seed": settings.seed}.items():
                # clip_range and the like are generated options: they live among algorithm_options
                (train if name in train else train["algorithm_options"])[name] = value
            train_kwargs, eval_kwargs, _ = resolve_env_kwargs(settings.env, given)
            self.env = gym.make(settings.env, **train_kwargs)
            self.held_out = gym.make(settings.env, **eval_kwargs)
            self.model = build_algorithm(train, build_policy(train, self.env, verbose=0), self.env)
        self.eval_tasks = settings.eval_tasks

    def learn(self, timesteps: int) -> None:
        self.model.learn(timesteps, reset_num_timesteps=self.model.num_timesteps == 0, log_interval=0)

    def score(self) -> float:
        if self.held_out is None:
            from grpo_agent.common.evaluation import exact_expected_reward

            optimum = float(getattr(self.env.unwrapped, "optimal_expected_reward", 1.0))
            return exact_expected_reward(self.model.policy, self.env) / optimum
        from grpo_agent.run.accuracy import evaluate_accuracy

        return evaluate_accuracy(self.model, self.held_out, self.eval_tasks).accuracy

    def close(self) -> None:
        self.env.close()
        if self.held_out is not None:
            self.held_out.close()


def objective(settings: TuneSettings) -> Callable[[Any], float]:
    """Optuna's objective: the mean final score over the family, with intermediate reports."""
    import optuna

    def run(trial: Any) -> float:
        hyper = suggest(trial, settings)
        finals: list[float] = []
        step = 0
        for env_kwargs in settings.family:
            member = _Member(settings, env_kwargs, hyper)
            try:
                chunk = max(1, settings.budget // settings.checkpoints)
                for _ in range(settings.checkpoints):
                    member.learn(chunk)
                    latest = member.score()
                    trial.report(statistics.fmean([*finals, latest]), step)
                    step += 1
                    if trial.should_prune():
                        raise optuna.TrialPruned()
                finals.append(latest)
            finally:
                member.close()
        return statistics.fmean(finals)

    return run


def tune(
    settings: TuneSettings,
    n_trials: int,
    pruner: Any = None,
    sampler: Any = None,
    on_trial: Callable[[Any, Any], None] | None = None,
) -> Any:
    """Run the search; returns the ``optuna.Study`` (its ``best_params`` are ``grpo train`` settings).

    :param settings: what to search and on which family.
    :param n_trials: trials to run.
    :param pruner: an Optuna pruner (default: ``MedianPruner`` that waits for 2 finished trials
        and the first checkpoint of each trial).
    :param sampler: an Optuna sampler (default: TPE seeded with ``settings.seed``).
    :param on_trial: called as ``(study, trial)`` after each trial ends (e.g. to print it).
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=sampler or optuna.samplers.TPESampler(seed=settings.seed),
        pruner=pruner or optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
    )
    if settings.baseline is not None:
        study.enqueue_trial({k: v for k, v in settings.baseline.items() if k in settings.params})
    study.optimize(objective(settings), n_trials=n_trials, callbacks=[on_trial] if on_trial else None)
    return study
