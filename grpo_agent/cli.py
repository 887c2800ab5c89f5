"""The ``grpo`` command: train a language-model policy with GRPO (or PPO) on a verifiable-reward
env, and evaluate checkpoints.

The main job, with no arguments at all::

    grpo train

warm-starts the built-in tiny model on ``grpo/Math-v0`` level 6 (two-digit addition and
subtraction, 15,050 questions) until it answers ~30% of unseen training questions, trains it
with GRPO with a live progress bar, and writes a run folder (logs, checkpoint, reward curve
with held-out accuracy along the run, summary with held-out accuracy before and after).
``grpo train --help`` lists every knob; ``grpo eval RUN_OR_MODEL`` reports greedy accuracy,
sampled accuracy and pass@k of any checkpoint on any env.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from grpo_agent.engines.vllm_support import INSTALL_HINT, vllm_available
from grpo_agent.run.cli_options import algorithm_kwargs, json_object
from grpo_agent.run.config_file import ConfigError, options_as_tokens, read_config
from grpo_agent.run.eval_command import cmd_eval
from grpo_agent.run.settings import (
    DEFAULT_ENV,
    DEFAULT_ENV_KWARGS,
    DEFAULT_EVAL_EVERY,
    DEFAULT_EVAL_TASKS,
    DEFAULT_TOTAL_TIMESTEPS,
    MAIN_JOB_SFT,
    PRETRAINED_LEARNING_RATE,
    TABULAR_LEARNING_RATE,
    TINY_LEARNING_RATE,
    build_algorithm,
    env_problem,
    policy_kwargs_problem,
    resolve_env_kwargs,
    settings_from_args,
    sft_settings,
)
from grpo_agent.run.tracking import REPORT_TO, report_to_problem
from grpo_agent.run.train_command import cmd_train, launch_processes
from grpo_agent.run.tune_command import add_tune_parser, cmd_tune, tune_problem
from grpo_envs.version import __version__

__all__ = [
    "DEFAULT_ENV",
    "DEFAULT_ENV_KWARGS",
    "build_algorithm",
    "build_parser",
    "main",
    "main_job_settings",
    "resolve_env_kwargs",
    "sft_settings",
]


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except None (those options say in words what None means)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False:
            return action.help or ""
        return super()._get_help_string(action) or ""


def add_train_arguments(train: argparse.ArgumentParser) -> None:
    """Every ``grpo train`` option (also what a ``--config`` file is checked against)."""
    what = train.add_argument_group("what to train")
    train.add_argument(
        "--config",
        default=None,
        metavar="RUN_YAML",
        help="a YAML file of options, keyed by their names with underscores (group_size: 8, policy_kwargs: "
        "{...}); flags given beside it override it (example: examples/run.yaml)",
    )
    what.add_argument("--env", default=DEFAULT_ENV, help="registered env id")
    what.add_argument(
        "--env-kwargs",
        default=None,
        help="JSON object of env arguments (default for grpo/Math-v0: "
        + json.dumps(DEFAULT_ENV_KWARGS[DEFAULT_ENV])
        + '; the former main job is {"levels": 1}); the held-out env is the same with split="test" when '
        "the env has splits",
    )
    what.add_argument(
        "--algo", choices=("grpo", "ppo"), default="grpo", help="GRPO, or the PPO baseline (critic + GAE)"
    )
    what.add_argument(
        "--policy",
        default="tiny",
        help="'tiny' (built-in 0.9M-parameter model, warm-started on the env's tasks), a Hugging "
        "Face model folder / hub name, or 'tabular' (a softmax table, for Discrete envs such as grpo/Bandit-v0)",
    )
    what.add_argument(
        "--policy-kwargs",
        type=json_object,
        default=None,
        metavar="JSON",
        help="keyword arguments of the policy's constructor (TinyPolicy, CausalLMPolicy or TabularPolicy; "
        'docs/lm.md), e.g. \'{"max_prompt_length": 256, "tiny_config": {"hidden_size": 64}}\'',
    )
    what.add_argument(
        "--sft-steps",
        type=int,
        default=None,
        help="tiny only: supervised warm-start steps, the most it may take when a target accuracy is set "
        f"(default: {MAIN_JOB_SFT['steps']} on the main job, else 600; 0: no warm start)",
    )
    what.add_argument(
        "--sft-target-accuracy",
        type=float,
        default=None,
        help="tiny only: stop the warm start once greedy accuracy on 200 unseen training questions reaches "
        f"this (default: {MAIN_JOB_SFT['target_accuracy']} on the main job, else none; 0: a fixed budget)",
    )
    budget = train.add_argument_group("budget and hyperparameters")
    budget.add_argument(
        "--total-timesteps",
        type=int,
        default=None,
        help=f"completions to sample and score in total (default {DEFAULT_TOTAL_TIMESTEPS}); with "
        "--resume, a new total for the run",
    )
    budget.add_argument("--group-size", type=int, default=8, help="completions per prompt, G (TRL num_generations)")
    budget.add_argument(
        "--n-groups",
        type=int,
        default=16,
        help="prompts per rollout (a rollout is n_groups * group_size completions; PPO samples "
        "the same number of completions, one per prompt)",
    )
    budget.add_argument(
        "--learning-rate",
        type=float,
        default=None,
        help=f"peak learning rate (default {TINY_LEARNING_RATE} for tiny, {PRETRAINED_LEARNING_RATE} "
        f"for pretrained models, {TABULAR_LEARNING_RATE} for tabular)",
    )
    budget.add_argument("--beta", type=float, default=0.04, help="KL coefficient to the reference policy")
    budget.add_argument("--n-epochs", type=int, default=1, help="passes over each rollout")
    budget.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="completions per gradient step (default: the whole rollout); lower it to save memory",
    )
    budget.add_argument(
        "--loss-type", default="grpo", choices=("grpo", "bnpo", "dr_grpo", "dapo"), help="GRPO loss aggregation"
    )
    budget.add_argument("--temperature", type=float, default=1.0, help="sampling temperature")
    budget.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling threshold")
    budget.add_argument(
        "--max-new-tokens",
        type=int,
        default=None,
        help="longest completion in tokens (default 16 for tiny, 256 otherwise)",
    )
    budget.add_argument("--lr-scheduler-type", default="constant", choices=("constant", "linear", "cosine"))
    # Every other constructor argument of GRPO and PPO, generated so the CLI cannot fall behind.
    from grpo_agent.grpo import GRPO
    from grpo_agent.ppo import PPO
    from grpo_agent.run.cli_options import add_algorithm_options

    every = train.add_argument_group(
        "every other GRPO/PPO hyperparameter", "the algorithms' constructor arguments (docs/agent.md explains each)"
    )
    train.set_defaults(algorithm_options=add_algorithm_options(every, {"grpo": GRPO, "ppo": PPO}))
    machine = train.add_argument_group("machine")
    machine.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:1, ...")
    machine.add_argument("--dtype", default="auto", help="auto (bf16 on a capable GPU, else fp32), float32, bfloat16")
    machine.add_argument("--gradient-checkpointing", action="store_true", help="recompute activations: less memory")
    machine.add_argument("--lora-r", type=int, default=0, help="train LoRA adapters of this rank (0: full fine-tuning)")
    machine.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    machine.add_argument(
        "--num-processes",
        type=int,
        default=1,
        help="train data-parallel in N processes on this machine (one per GPU, or CPU processes over gloo): "
        "the command runs itself under torchrun; for FSDP or several machines use a launcher (docs/scaling.md)",
    )
    run = train.add_argument_group("run folder")
    run.add_argument("--output", default=None, help="run folder (default: runs/<algo>-<env>-<policy>-seed<seed>)")
    run.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its last checkpoint (its settings are reused; "
        "--total-timesteps may raise the budget)",
    )
    run.add_argument("--seed", type=int, default=0, help="seed of everything (warm start, sampling, env)")
    run.add_argument("--eval-tasks", type=int, default=DEFAULT_EVAL_TASKS, help="held-out tasks evaluated before/after")
    run.add_argument(
        "--eval-every",
        type=int,
        default=DEFAULT_EVAL_EVERY,
        help="updates between greedy held-out evaluations during the run (0: only before and after)",
    )
    run.add_argument("--save-every", type=int, default=10, help="rollouts between checkpoints")
    run.add_argument(
        "--report-to",
        choices=REPORT_TO,
        default="tensorboard",
        help="where the metrics go besides progress.csv: TensorBoard (run folder's tb/), Weights & Biases "
        "or trackio (optional extras: pip install 'grpo-gym[wandb]' / 'grpo-gym[trackio]'), or nowhere else",
    )
    run.add_argument(
        "--log-completions-every",
        type=int,
        default=0,
        metavar="N",
        help="every N updates, write the rollout's prompts, completions, rewards and reasons to "
        "completions.csv (and TensorBoard's text tab); 0: never",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--verbose", type=int, default=0, help="1 prints the metrics table after every update")


def build_parser() -> argparse.ArgumentParser:
    """The ``grpo`` argument parser (``grpo train``, ``grpo eval``, ``grpo tune``)."""
    parser = argparse.ArgumentParser(
        prog="grpo",
        description="Train language-model policies with GRPO (or PPO) on verifiable-reward Gymnasium envs.",
        epilog="Start with `grpo train` (the main job, a few minutes on a laptop CPU), then "
        "`grpo eval runs/<name>`. Details: docs/lm.md.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s (grpo-gym) {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser(
        "train",
        help="train a policy and write a run folder",
        description="Train a policy on an env and write logs, a checkpoint, a reward curve and a summary "
        "(held-out accuracy before/after) to the run folder. With no arguments: the tiny model "
        "on grpo/Math-v0 level 1, warm-started, then GRPO.",
        formatter_class=_HelpFormatter,
    )
    add_train_arguments(train)

    ev = sub.add_parser(
        "eval",
        help="held-out accuracy and pass@k of a checkpoint",
        description="Report greedy accuracy, sampled accuracy at the training temperature and pass@k (k = 1, 4, "
        "8; the unbiased estimator of Chen et al. 2021), each with a 95% confidence interval, of a run "
        "folder, a checkpoint .zip, a Hugging Face model folder, or 'tiny' (the warm start alone) on an "
        "env's held-out split.",
        formatter_class=_HelpFormatter,
    )
    ev.add_argument("checkpoint", help="run folder, checkpoint .zip, model folder / hub name, or 'tiny'")
    ev.add_argument("--env", default=None, help="env id (default: the run's env, else grpo/Math-v0)")
    ev.add_argument("--env-kwargs", default=None, help="JSON env arguments (default: the run's)")
    ev.add_argument("--split", default="test", help="which split to evaluate on, when the env has splits")
    ev.add_argument("--n-tasks", type=int, default=DEFAULT_EVAL_TASKS, help="number of tasks")
    ev.add_argument(
        "--samples",
        type=int,
        default=8,
        help="samples per task for sampled accuracy and pass@k (k = 1, 4, 8, those <= samples)",
    )
    ev.add_argument(
        "--temperature",
        type=float,
        default=None,
        help="sampling temperature (default: the run's training temperature, else the model's, else 1.0)",
    )
    ev.add_argument("--device", default="auto")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--json", action="store_true", help="print the report as JSON")
    add_tune_parser(sub, _HelpFormatter)
    return parser


def main_job_settings() -> dict[str, Any]:
    """The settings of ``grpo train`` typed with no arguments (what ``make train`` runs)."""
    return settings_from_args(build_parser().parse_args(["train"]))


def input_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the command line, in one sentence (None: nothing). Checked before
    anything is written, so bad input leaves no half-made run folder behind."""
    if args.command == "train" and args.num_processes != 1:
        if args.num_processes < 1:
            return f"--num-processes must be >= 1, got {args.num_processes}"
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            return "--num-processes starts the processes itself; under torchrun or accelerate launch leave it out"
    if args.command == "train" and args.resume is None:
        problem = (
            env_problem(args.env, args.env_kwargs, args.policy)
            or policy_kwargs_problem(args.policy, args.policy_kwargs)
            or report_to_problem(args.report_to)
        )
        if problem is not None:
            return problem
        try:
            given = algorithm_kwargs(args, args.algo, getattr(args, "algorithm_options", []))
        except SystemExit as refusal:
            return str(refusal).removeprefix("grpo train: ")
        if given.get("reward_backend") == "ray" and given.get("reward_workers", 0) < 1:
            return "--reward-backend ray scores on --reward-workers Ray workers: add --reward-workers N (N >= 1)"
        if getattr(args, "generation_backend", None) == "vllm" and not vllm_available():
            return INSTALL_HINT
    if args.command == "eval" and args.env is not None:
        return env_problem(args.env, args.env_kwargs)
    if args.command == "tune":
        return tune_problem(args)
    return None


def config_tokens(path: str) -> list[str]:
    """The options of a ``--config`` YAML file as ``grpo train`` tokens, each value checked as
    its flag would be (:mod:`grpo_agent.run.config_file`)."""
    checker = argparse.ArgumentParser(prog="grpo train", add_help=False, exit_on_error=False)
    add_train_arguments(checker)
    return options_as_tokens(read_config(path), checker, path)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``grpo`` command. Bad input exits with status 2 and one sentence."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train" and args.config is not None:
        try:
            tokens = config_tokens(args.config)
        except ConfigError as exc:
            parser.exit(2, f"grpo train: {exc}\n")
        given = list(sys.argv[1:] if argv is None else argv)
        at = given.index("train") + 1
        args = parser.parse_args([*given[:at], *tokens, *given[at:]])  # the flags come last: they win
    problem = input_problem(args)
    if problem is not None:
        parser.exit(2, f"grpo {args.command}: {problem}\n")
    if args.command == "train" and args.num_processes > 1:
        return launch_processes(args.num_processes, sys.argv[1:] if argv is None else argv)
    if args.command == "train":
        return cmd_train(args)
    if args.command == "tune":
        return cmd_tune(args)
    return cmd_eval(args)


if __name__ == "__main__":
    sys.exit(main())
