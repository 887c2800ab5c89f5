"""`grpo tune`: an Optuna search over GRPO's hyperparameters across a family of tasks, with
intermediate scores for pruning, whose best setting is a config in `grpo train`'s option names."""

from __future__ import annotations

import statistics

import gymnasium as gym
import optuna
import pytest
import yaml

from grpo_agent import GRPO, cli
from grpo_agent.common.evaluation import exact_expected_reward
from grpo_agent.run.tuning import TuneSettings, tune

FAMILY = '[{"table_seed": 0}, {"table_seed": 1, "n_actions": 4}]'


pytestmark = pytest.mark.usefixtures("isolated_cache", "torch_one_thread")


def train_dests() -> set[str]:
    """The option names (dests) `grpo train` reads."""
    parser = cli.build_parser()
    train = next(a for a in parser._subparsers._group_actions if a.dest == "command").choices["train"]  # type: ignore[union-attr]
    return {a.dest for a in train._actions}


def test_grpo_tune_writes_the_best_setting_in_grpo_trains_option_names(tmp_path, capsys):
    out = tmp_path / "best.yaml"
    argv = ["tune", "--family", FAMILY, "--trials", "3", "--budget", "256", "--checkpoints", "2", "--output", str(out)]
    assert cli.main(argv) == 0
    text = out.read_text()
    assert text.startswith("# grpo tune: best of 3 trials")
    best = yaml.safe_load(text)
    assert set(best) == {"learning_rate", "beta", "group_size", "clip_range"}  # no temperature: tabular
    assert set(best) <= train_dests()
    assert 1e-3 <= best["learning_rate"] <= 1.0 and 0 <= best["beta"] <= 0.2
    assert best["group_size"] in (4, 8, 16) and 0.1 <= best["clip_range"] <= 0.4
    printed = capsys.readouterr().out
    assert sum(line.startswith("trial ") for line in printed.splitlines()) == 3 and f"wrote {out}" in printed


def test_every_checkpoint_is_reported_and_the_value_is_the_family_mean():
    settings = TuneSettings(
        env="grpo/Bandit-v0", family=[{"table_seed": 0}, {"table_seed": 1}], budget=256, checkpoints=2,
        params=["learning_rate"], fixed={"n_groups": 8},
    )  # fmt: skip
    study = tune(settings, n_trials=2, pruner=optuna.pruners.NopPruner())
    # The same runs by hand: each member trains in 2 chunks of 128 and is scored after each.
    for trial in study.trials:
        scores = []
        for table_seed in (0, 1):
            env = gym.make("grpo/Bandit-v0", table_seed=table_seed)
            model = GRPO("tabular", env, seed=0, n_groups=8, learning_rate=trial.params["learning_rate"])
            for first in (True, False):
                model.learn(128, reset_num_timesteps=first, log_interval=0)
                scores.append(exact_expected_reward(model.policy, env) / env.unwrapped.optimal_expected_reward)
        a0, a1, b0, b1 = scores
        expected = [a0, a1, statistics.fmean([a1, b0]), statistics.fmean([a1, b1])]
        assert [trial.intermediate_values[k] for k in range(4)] == pytest.approx(expected, abs=1e-12)
        assert trial.value == pytest.approx(statistics.fmean([a1, b1]), abs=1e-12)


def test_a_trial_that_falls_behind_is_pruned_at_its_first_checkpoint():
    settings = TuneSettings(env="grpo/Bandit-v0", family=[{"table_seed": 0}], budget=256, checkpoints=4)
    study = tune(settings, n_trials=2, pruner=optuna.pruners.ThresholdPruner(lower=1.01))  # nothing reaches it
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.PRUNED] * 2
    assert [len(t.intermediate_values) for t in study.trials] == [1, 1]


def test_grpo_tune_searches_a_language_model_policy_with_its_temperature(tmp_path):
    out = tmp_path / "best.yaml"
    fixed = '{"n_groups": 2, "max_new_tokens": 4, "sft": {"steps": 2}}'
    argv = [
        "tune", "--env", "grpo/Math-v0", "--family", '[{"levels": 1, "num_tasks": 40}]', "--trials", "1",
        "--budget", "8", "--checkpoints", "1", "--eval-tasks", "4", "--fixed", fixed, "--output", str(out),
    ]  # fmt: skip
    assert cli.main(argv) == 0
    best = yaml.safe_load(out.read_text())
    assert set(best) == {"learning_rate", "beta", "group_size", "clip_range", "temperature"}
    assert set(best) <= train_dests() and 1e-5 <= best["learning_rate"] <= 1e-3
    # `grpo train --config best.yaml` reads it, value by value
    args = cli.build_parser().parse_args(["train", *cli.config_tokens(str(out))])
    assert (args.learning_rate, args.beta, args.group_size, args.temperature, args.clip_range) == (
        best["learning_rate"], best["beta"], best["group_size"], best["temperature"], best["clip_range"],
    )  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--family", '{"table_seed": 0}'], "--family must be a list"),
        (["--family", "[1]"], "list of JSON objects"),
        (["--params", "temperature"], "no sampling temperature"),
        (["--policy", "tiny"], "not a text env"),
        (["--env", "grpo/Nope-v0"], "unknown env id"),
        (["--trials", "0"], "--trials must be at least 1"),
    ],
)
def test_bad_input_exits_with_status_2_and_one_sentence_before_anything_is_written(tmp_path, capsys, argv, says):
    out = tmp_path / "best.yaml"
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["tune", *argv, "--output", str(out)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("grpo tune: ") and says in err and err.count("\n") == 1
    assert not out.exists()


def test_plain_grpos_setting_is_the_first_trial_unless_told_otherwise(tmp_path, capsys):
    out = tmp_path / "best.yaml"
    argv = ["tune", "--family", '[{"table_seed": 0}]', "--trials", "2", "--budget", "128", "--checkpoints", "1"]
    assert cli.main([*argv, "--output", str(out)]) == 0
    first = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("trial   0"))
    assert "'learning_rate': 0.1, 'beta': 0.04, 'group_size': 8, 'clip_range': 0.2}" in first
    assert first.endswith("(plain GRPO's setting)")
    assert cli.main([*argv, "--output", str(out), "--no-baseline"]) == 0
    first = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("trial   0"))
    assert "plain GRPO" not in first and "'learning_rate': 0.1," not in first
