"""The command-line options generated from GRPO's and PPO's constructors."""

from __future__ import annotations

import argparse
import inspect

import gymnasium as gym
import pytest

import grpo_envs  # noqa: F401 - registers grpo/Bandit-v0
from grpo_agent import GRPO, PPO
from grpo_agent.run.cli_options import NOT_OPTIONS, add_algorithm_options, algorithm_kwargs

ALGORITHMS = {"grpo": GRPO, "ppo": PPO}


def _parser() -> tuple[argparse.ArgumentParser, list]:
    parser = argparse.ArgumentParser(exit_on_error=False)
    return parser, add_algorithm_options(parser, ALGORITHMS)


def test_every_hyperparameter_of_both_algorithms_is_an_option() -> None:
    _, options = _parser()
    names = {option.name for option in options}
    for cls in ALGORITHMS.values():
        params = {n for n, p in inspect.signature(cls).parameters.items() if p.kind is not p.VAR_KEYWORD}
        assert params - NOT_OPTIONS <= names, params - NOT_OPTIONS - names


def test_values_parse_to_what_the_constructor_takes() -> None:
    parser, options = _parser()
    args = parser.parse_args(
        [
            "--clip-range-high", "0.28", "--kl-target", "none", "--scale-rewards", "none",
            "--mask-truncated-completions", "--reward-weights", '{"accuracy": 1, "format": 0.5}',
            "--overlong-buffer-len", "4", "--dynamic-sampling", "none", "--importance-sampling-level", "sequence",
        ]
    )  # fmt: skip
    kwargs = algorithm_kwargs(args, "grpo", options)
    assert kwargs == {
        "clip_range_high": 0.28,
        "kl_target": None,
        "scale_rewards": "none",  # a value of its own, not None
        "mask_truncated_completions": True,
        "reward_weights": {"accuracy": 1, "format": 0.5},
        "overlong_buffer_len": 4,
        "dynamic_sampling": None,
        "importance_sampling_level": "sequence",
    }
    model = GRPO("tabular", gym.make("grpo/Bandit-v0"), **{**kwargs, "reward_weights": None})
    assert model.clip_range_high == 0.28 and model.importance_sampling_level == "sequence"
    assert algorithm_kwargs(parser.parse_args([]), "grpo", options) == {}  # nothing given: defaults rule


@pytest.mark.parametrize(
    "argv",
    [["--policy-loss", "ppo"], ["--reward-weights", "[1, 2]"], ["--reward-weights", "{not json"], ["--gamma", "x"]],
)
def test_bad_values_are_refused_by_the_parser(argv: list[str]) -> None:
    parser, _ = _parser()
    with pytest.raises(argparse.ArgumentError):
        parser.parse_args(argv)


def test_an_option_of_the_other_algorithm_is_refused_with_the_one_that_takes_it() -> None:
    parser, options = _parser()
    with pytest.raises(SystemExit, match="--dual-clip applies to --algo grpo, not ppo"):
        algorithm_kwargs(parser.parse_args(["--dual-clip", "3"]), "ppo", options)
    assert algorithm_kwargs(parser.parse_args(["--gae-lambda", "0.9"]), "ppo", options) == {"gae_lambda": 0.9}


def test_options_the_parser_already_has_are_left_to_it() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--beta", type=float, default=0.04)
    options = add_algorithm_options(parser, ALGORITHMS)
    assert "--beta" not in {o.flag for o in options}
    assert parser.parse_args([]).beta == 0.04


def test_grpo_train_takes_the_generated_options_and_keeps_them_in_the_run(tmp_path) -> None:
    import json

    from test_cli import FAST

    from grpo_agent import cli
    from grpo_agent.run.settings import settings_from_args

    parser = cli.build_parser()
    settings = settings_from_args(parser.parse_args(["train", "--clip-range-high", "0.28", "--entropy-coef", "0.01"]))
    assert settings["algorithm_options"] == {"clip_range_high": 0.28, "entropy_coef": 0.01}
    with pytest.raises(SystemExit, match="--gae-lambda applies to --algo ppo, not grpo"):
        settings_from_args(parser.parse_args(["train", "--gae-lambda", "0.9"]))
    run = tmp_path / "run"
    argv = ["train", *FAST, "--total-timesteps", "8", "--advantage-estimator", "rloo", "--output", str(run)]
    assert cli.main(argv) == 0
    assert json.loads((run / "config.json").read_text())["algorithm_options"] == {"advantage_estimator": "rloo"}
    model = GRPO.load(run / "checkpoint.zip", device="cpu")
    assert model.advantage_estimator == "rloo" and model.scale_rewards == "none"
