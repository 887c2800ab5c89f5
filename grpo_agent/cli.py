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
import inspect
import json
import os
import pathlib
import sys
import time
import weakref
from typing import Any

#: The main job's defaults, tuned so that ``grpo train`` on a 2-core laptop CPU finishes in a
#: few minutes (see docs/lm.md for the measurements behind them; tests/test_main_job.py checks
#: that docs/lm.md states exactly these).
DEFAULT_ENV = "grpo/Math-v0"
#: Level 6: 15,050 two-operand questions, so the rollout reward cannot rise by
#: memorising (level 1 has ~840 training questions, and RL on it did not transfer). The prompt
#: is the bare question: the tiny model answers in level 6's worked form (``861 168``, the
#: verifier reads the last number), so the ``\boxed{}`` instruction would only triple the
#: length of every sequence, and the time of every step.
DEFAULT_ENV_KWARGS: dict[str, dict[str, Any]] = {
    "grpo/Math-v0": {"levels": 6, "num_tasks": 20_000, "prompt_template": "{question}"}
}
#: The tiny model's warm start on the main job: SFT until greedy accuracy on 200 unseen
#: training questions reaches 30% (checked every 25 steps), at most 2,000 steps. A target
#: rather than a fixed step count: at a fixed budget the seeds' starting accuracies spread
#: from ~7% (where RL has nothing to sharpen) to ~40%. Used when the env and its arguments are
#: the defaults; elsewhere the tiny warm start is a fixed 600 steps unless the flags say otherwise.
MAIN_JOB_SFT: dict[str, Any] = {"target_accuracy": 0.3, "steps": 2000}
#: Learning rates: 2e-4 for the tiny model (5e-4 moved it fast, KL ~0.1 per token, without
#: raising the reward; 2e-4 raised it steadily); 1e-6 is TRL's default for pretrained models.
TINY_LEARNING_RATE = 2e-4
PRETRAINED_LEARNING_RATE = 1e-6
#: 300 updates of 16 prompts x 8 completions.
DEFAULT_TOTAL_TIMESTEPS = 38_400
DEFAULT_EVAL_TASKS = 200
#: Updates between mid-run held-out evaluations (greedy; the reward curve's accuracy points).
DEFAULT_EVAL_EVERY = 50


def _env_accepts(env_id: str, name: str) -> bool:
    """Whether the registered env's constructor takes a parameter ``name``."""
    import gymnasium as gym

    spec = gym.spec(env_id)
    entry = spec.entry_point
    if isinstance(entry, str):
        module, attr = entry.split(":")
        entry = getattr(__import__(module, fromlist=[attr]), attr)
    try:
        return name in inspect.signature(entry).parameters
    except (TypeError, ValueError):
        return False


def resolve_env_kwargs(env_id: str, given: str | None) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """``(train kwargs, held-out kwargs, has_split)`` for ``env_id``: the given JSON (or the main
    job's default), and the same with ``split="test"`` when the env has a held-out split."""
    kwargs = json.loads(given) if given else dict(DEFAULT_ENV_KWARGS.get(env_id, {}))
    if not isinstance(kwargs, dict):
        raise SystemExit(f"--env-kwargs must be a JSON object such as '{{\"levels\": 1}}', got {given!r}")
    has_split = _env_accepts(env_id, "split")
    eval_kwargs = {**kwargs, "split": "test"} if has_split else dict(kwargs)
    if has_split:
        kwargs.setdefault("split", "train")
    return kwargs, eval_kwargs, has_split


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except None (those options say in words what None means)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False:
            return action.help or ""
        return super()._get_help_string(action) or ""


def build_parser() -> argparse.ArgumentParser:
    """The ``grpo`` argument parser (``grpo train``, ``grpo eval``)."""
    parser = argparse.ArgumentParser(
        prog="grpo",
        description="Train language-model policies with GRPO (or PPO) on verifiable-reward Gymnasium envs.",
        epilog="Start with `grpo train` (the main job, a few minutes on a laptop CPU), then "
        "`grpo eval runs/<name>`. Details: docs/lm.md.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser(
        "train",
        help="train a policy and write a run folder",
        description="Train a policy on an env and write logs, a checkpoint, a reward curve and a summary "
        "(held-out accuracy before/after) to the run folder. With no arguments: the tiny model "
        "on grpo/Math-v0 level 1, warm-started, then GRPO.",
        formatter_class=_HelpFormatter,
    )
    what = train.add_argument_group("what to train")
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
        help="'tiny' (built-in 0.9M-parameter model, warm-started on the env's tasks) or a Hugging "
        "Face model folder / hub name",
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
        "for pretrained models)",
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
    machine = train.add_argument_group("machine")
    machine.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:1, ...")
    machine.add_argument("--dtype", default="auto", help="auto (bf16 on a capable GPU, else fp32), float32, bfloat16")
    machine.add_argument("--gradient-checkpointing", action="store_true", help="recompute activations: less memory")
    machine.add_argument("--lora-r", type=int, default=0, help="train LoRA adapters of this rank (0: full fine-tuning)")
    machine.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
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
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--verbose", type=int, default=0, help="1 prints the metrics table after every update")

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
    return parser


# -- train ------------------------------------------------------------------------------------


def sft_settings(policy: str, env: str, env_kwargs: str | None, steps: int | None, target: float | None) -> dict:
    """The tiny warm start's :class:`~grpo_agent.policies.tiny.SFTConfig` fields: the main job's
    (:data:`MAIN_JOB_SFT`) on the default env with default arguments, else the built-in fixed
    budget; ``steps`` and ``target`` (0: none) override either."""
    if policy != "tiny":
        return {}
    sft = dict(MAIN_JOB_SFT) if env == DEFAULT_ENV and env_kwargs is None else {}
    if steps is not None:
        sft["steps"] = steps
    if target is not None:
        if target > 0:
            sft["target_accuracy"] = target
        else:
            sft.pop("target_accuracy", None)
    return sft


def _settings_from_args(args: argparse.Namespace) -> dict[str, Any]:
    tiny = args.policy == "tiny"
    return {
        "env": args.env,
        "env_kwargs": args.env_kwargs,
        "algo": args.algo,
        "policy": args.policy,
        "sft": sft_settings(args.policy, args.env, args.env_kwargs, args.sft_steps, args.sft_target_accuracy),
        "total_timesteps": args.total_timesteps or DEFAULT_TOTAL_TIMESTEPS,
        "group_size": args.group_size,
        "n_groups": args.n_groups,
        "learning_rate": args.learning_rate
        if args.learning_rate is not None
        else (TINY_LEARNING_RATE if tiny else PRETRAINED_LEARNING_RATE),
        "beta": args.beta,
        "n_epochs": args.n_epochs,
        "batch_size": args.batch_size,
        "loss_type": args.loss_type,
        "temperature": args.temperature,
        "top_p": args.top_p,
        "max_new_tokens": args.max_new_tokens if args.max_new_tokens is not None else (16 if tiny else 256),
        "lr_scheduler_type": args.lr_scheduler_type,
        "device": args.device,
        "dtype": args.dtype,
        "gradient_checkpointing": args.gradient_checkpointing,
        "lora_r": args.lora_r,
        "seed": args.seed,
        "eval_tasks": args.eval_tasks,
        "eval_every": args.eval_every,
        "save_every": args.save_every,
    }


def main_job_settings() -> dict[str, Any]:
    """The settings of ``grpo train`` typed with no arguments (what ``make train`` runs)."""
    return _settings_from_args(build_parser().parse_args(["train"]))


def _policy_device(settings: dict[str, Any]) -> str:
    """``--device``, except that ``auto`` keeps the tiny model on the CPU: at 0.9M parameters
    a GPU's kernel-launch overhead costs more than its arithmetic saves."""
    return "cpu" if settings["policy"] == "tiny" and settings["device"] == "auto" else settings["device"]


def build_policy(settings: dict[str, Any], env: Any, verbose: int = 1) -> Any:
    """The policy a run's settings describe (the tiny one is warm-started on ``env``)."""
    common = {
        "temperature": settings["temperature"],
        "top_p": settings["top_p"],
        "max_new_tokens": settings["max_new_tokens"],
        "gradient_checkpointing": settings["gradient_checkpointing"],
        "lora": {"r": settings["lora_r"], "lora_alpha": 2 * settings["lora_r"]} if settings["lora_r"] else None,
        "reference": "copy" if settings["beta"] > 0 else "none",
        "dtype": settings["dtype"],
    }
    if settings["policy"] == "tiny":
        from grpo_agent.policies.tiny import TinyPolicy

        return TinyPolicy(
            env.observation_space,
            env.action_space,
            env,
            sft_steps=settings.get("sft_steps"),  # run folders written before "sft" existed
            sft_config=settings.get("sft"),
            seed=settings["seed"],
            verbose=verbose,
            device=_policy_device(settings),
            **common,
        )
    from grpo_agent.policies.causal_lm import CausalLMPolicy

    return CausalLMPolicy(
        env.observation_space, env.action_space, settings["policy"], device=settings["device"], **common
    )


def build_algorithm(settings: dict[str, Any], policy: Any, env: Any) -> Any:
    """GRPO or PPO on ``policy``, with the run's hyperparameters and the non-finite guard."""
    from grpo_agent.run.faults import FiniteGuardAdamW

    common = {
        "learning_rate": settings["learning_rate"],
        "n_epochs": settings["n_epochs"],
        "batch_size": settings["batch_size"],
        "beta": settings["beta"],
        "seed": settings["seed"],
        "lr_scheduler_type": settings["lr_scheduler_type"],
        "optimizer_class": FiniteGuardAdamW,
        "device": policy.device,
    }
    if settings["algo"] == "ppo":
        from grpo_agent.ppo import PPO

        return PPO(policy, env, n_steps=settings["n_groups"] * settings["group_size"], **common)
    from grpo_agent.grpo import GRPO

    return GRPO(
        policy,
        env,
        group_size=settings["group_size"],
        n_groups=settings["n_groups"],
        loss_type=settings["loss_type"],
        **common,
    )


def _algorithm_class(name: str) -> Any:
    if name == "ppo":
        from grpo_agent.ppo import PPO

        return PPO
    from grpo_agent.grpo import GRPO

    return GRPO


def cmd_train(args: argparse.Namespace) -> int:
    """``grpo train``: see the module docstring and ``grpo train --help``."""
    import gymnasium as gym
    import torch

    import grpo_envs  # noqa: F401 - registers the grpo/* ids
    from grpo_agent.common.utils import set_random_seed
    from grpo_agent.run import run_folder as rf
    from grpo_agent.run.accuracy import evaluate_report
    from grpo_agent.run.faults import atomic_save, is_oom, oom_message

    started = time.perf_counter()
    if args.threads:
        torch.set_num_threads(args.threads)
    resuming = args.resume is not None
    if resuming:
        run_dir = pathlib.Path(args.resume)
        if not (run_dir / rf.CONFIG_FILE).exists() or not (run_dir / rf.CHECKPOINT_FILE).exists():
            print(
                f"grpo train: {run_dir} has no {rf.CONFIG_FILE} and {rf.CHECKPOINT_FILE}; give the folder of a "
                "run that wrote a checkpoint",
                file=sys.stderr,
            )
            return 2
        settings = json.loads((run_dir / rf.CONFIG_FILE).read_text())
        if args.total_timesteps is not None:
            settings["total_timesteps"] = args.total_timesteps
    else:
        settings = _settings_from_args(args)
        env_name, policy_name = settings["env"].replace("/", "_"), pathlib.Path(settings["policy"]).name
        name = f"{settings['algo']}-{env_name}-{policy_name}-seed{settings['seed']}"
        run_dir = pathlib.Path(args.output or os.path.join("runs", name))
        if (run_dir / rf.CHECKPOINT_FILE).exists():
            print(
                f"grpo train: {run_dir} already holds a run; continue it with --resume {run_dir}, or choose "
                "another --output",
                file=sys.stderr,
            )
            return 2
        run_dir.mkdir(parents=True, exist_ok=True)
        rf.write_json_atomic(run_dir / rf.CONFIG_FILE, settings)

    env_kwargs, eval_kwargs, has_split = resolve_env_kwargs(settings["env"], settings["env_kwargs"])
    train_env = gym.make(settings["env"], **env_kwargs)
    eval_env = gym.make(settings["env"], **eval_kwargs)
    set_random_seed(settings["seed"])
    show = not args.no_progress
    print(f"run folder: {run_dir}")

    previous = json.loads((run_dir / rf.SUMMARY_FILE).read_text()) if (run_dir / rf.SUMMARY_FILE).exists() else {}
    algo_class = _algorithm_class(settings["algo"])
    where = "held-out" if has_split else "training tasks (the env has no held-out split)"
    if resuming:
        model = algo_class.load(run_dir / rf.CHECKPOINT_FILE, env=train_env, device=_policy_device(settings))
        before = previous.get("heldout_accuracy_before")
        before_report = previous.get("heldout_before")
        print(f"resuming at {model.num_timesteps} / {settings['total_timesteps']} completions")
    else:
        policy = build_policy(settings, train_env, verbose=1)
        print(f"policy: {policy}")
        report = evaluate_report(policy, eval_env, settings["eval_tasks"])
        before, before_report = report.greedy.value, report.as_dict()
        print(f"{where} before training:")
        print("\n".join("  " + line for line in report.lines()))
        model = build_algorithm(settings, policy, train_env)
    run_logger = rf.make_run_logger(run_dir, stdout=args.verbose >= 1)
    model.set_logger(run_logger)
    weakref.finalize(model, run_logger.close)  # the run's CSV/TensorBoard files close with the agent, however we return
    summary: dict[str, Any] = {
        "env": settings["env"],
        "env_kwargs": env_kwargs,
        "algo": settings["algo"],
        "policy": settings["policy"],
        "seed": settings["seed"],
        "heldout_accuracy_before": before,
        "heldout_before": before_report,
        "status": "running",
    }
    rf.write_summary(run_dir, {**previous, **summary})

    remaining = settings["total_timesteps"] - model.num_timesteps
    status, code = "finished", 0
    train_start = time.perf_counter()
    try:
        if remaining > 0:
            model.learn(
                remaining,
                callback=[
                    rf.RunCallback(run_dir, settings["save_every"]),
                    rf.HeldoutAccuracyCallback(eval_env, settings["eval_tasks"], settings.get("eval_every", 0)),
                ],
                reset_num_timesteps=not resuming and model.num_timesteps == 0,
                progress_bar=show,
            )
    except KeyboardInterrupt:
        status, code = "interrupted", 130
        print("\ninterrupted: writing the last checkpoint", file=sys.stderr)
    except Exception as exc:
        if not is_oom(exc):
            raise
        print(
            "grpo train: "
            + oom_message(
                exc,
                n_groups=settings["n_groups"],
                group_size=settings["group_size"],
                max_new_tokens=settings["max_new_tokens"],
                gradient_checkpointing=settings["gradient_checkpointing"],
            ),
            file=sys.stderr,
        )
        summary.update(status="out_of_memory")
        rf.write_summary(run_dir, {**previous, **summary})
        return 3
    train_seconds = time.perf_counter() - train_start
    if status == "finished" or model.num_timesteps > 0:
        atomic_save(model, run_dir / rf.CHECKPOINT_FILE)
    if status == "interrupted":
        summary.update(status=status, timesteps=model.num_timesteps)
        rf.write_summary(run_dir, {**previous, **summary})
        print(f"checkpoint saved; continue with: grpo train --resume {run_dir}", file=sys.stderr)
        return code
    if hasattr(model.policy, "save_pretrained"):
        model.policy.save_pretrained(run_dir / rf.MODEL_DIR)
    after_report = evaluate_report(model.policy, eval_env, settings["eval_tasks"])
    after = after_report.greedy.value
    optimizer_skips = getattr(model.optimizer, "skipped_steps", 0)
    summary.update(
        status="finished",
        heldout_accuracy_after=after,
        heldout_after=after_report.as_dict(),
        heldout_gain_points=None if before is None else 100 * (after - before),
        heldout_tasks=settings["eval_tasks"],
        heldout_split="test" if has_split else "train (no held-out split)",
        timesteps=model.num_timesteps,
        updates=model._n_updates,
        skipped_nonfinite_updates=int(optimizer_skips)
        + int(previous.get("skipped_nonfinite_updates", 0) if resuming else 0),
        train_seconds=round(train_seconds + (previous.get("train_seconds", 0) if resuming else 0), 1),
        wall_seconds=round(time.perf_counter() - started + (previous.get("wall_seconds", 0) if resuming else 0), 1),
        peak_memory_mb=round(rf.peak_memory_mb(), 1),
    )
    rf.write_summary(run_dir, {**previous, **summary})
    rf.plot_reward_curve(
        run_dir, f"{settings['algo'].upper()} {settings['policy']} on {settings['env']}", before, after
    )
    print(f"{where} after training:")
    print("\n".join("  " + line for line in after_report.lines()))
    gain = "" if before is None else f"{before:.1%} -> {after:.1%} ({summary['heldout_gain_points']:+.1f} points) "
    print(f"held-out accuracy (greedy): {gain}in {summary['wall_seconds']:.0f}s; run folder: {run_dir}")
    return 0


# -- eval -------------------------------------------------------------------------------------


def cmd_eval(args: argparse.Namespace) -> int:
    """``grpo eval``: greedy accuracy, sampled accuracy and pass@k of a run folder, checkpoint,
    model folder, or the tiny warm start."""
    import gymnasium as gym

    import grpo_envs  # noqa: F401 - registers the grpo/* ids
    from grpo_agent.common.utils import set_random_seed
    from grpo_agent.run import run_folder as rf
    from grpo_agent.run.accuracy import DEFAULT_PASS_KS, evaluate_report

    set_random_seed(args.seed)
    target = pathlib.Path(args.checkpoint)
    run_settings: dict[str, Any] = {}
    zip_path: pathlib.Path | None = None
    if target.is_dir() and (target / rf.CHECKPOINT_FILE).exists():
        zip_path = target / rf.CHECKPOINT_FILE
        if (target / rf.CONFIG_FILE).exists():
            run_settings = json.loads((target / rf.CONFIG_FILE).read_text())
    elif target.suffix == ".zip":
        if not target.exists():
            print(f"grpo eval: no checkpoint at {target}", file=sys.stderr)
            return 2
        zip_path = target
    env_id = args.env or run_settings.get("env") or DEFAULT_ENV
    env_kwargs, _, has_split = resolve_env_kwargs(env_id, args.env_kwargs or run_settings.get("env_kwargs"))
    eval_kwargs = {**env_kwargs, "split": args.split} if has_split else env_kwargs
    eval_env = gym.make(env_id, **eval_kwargs)

    if zip_path is not None:
        algo = _algorithm_class(run_settings.get("algo", "grpo"))
        device = _policy_device({"policy": run_settings.get("policy", "tiny"), "device": args.device})
        policy = algo.load(zip_path, device=device).policy
    elif args.checkpoint == "tiny":
        from grpo_agent.policies.tiny import TinyPolicy

        train_env = gym.make(env_id, **env_kwargs)
        given = args.env_kwargs or run_settings.get("env_kwargs")
        policy = TinyPolicy(
            train_env.observation_space,
            train_env.action_space,
            train_env,
            sft_config=sft_settings("tiny", env_id, given, None, None),
            seed=args.seed,
            verbose=1,
        )
    else:
        from grpo_agent.policies.causal_lm import CausalLMPolicy

        try:
            policy = CausalLMPolicy(
                eval_env.observation_space, eval_env.action_space, args.checkpoint, device=args.device, reference="none"
            )
        except OSError as exc:
            print(f"grpo eval: {exc}", file=sys.stderr)
            return 2
    temperature = args.temperature if args.temperature is not None else run_settings.get("temperature")
    try:
        ks = tuple(k for k in DEFAULT_PASS_KS if k <= args.samples) or (1,)
        report = evaluate_report(policy, eval_env, args.n_tasks, n_samples=args.samples, ks=ks, temperature=temperature)
    except ValueError as exc:
        print(f"grpo eval: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(
            json.dumps({"env": env_id, "env_kwargs": eval_kwargs, "accuracy": report.greedy.value, **report.as_dict()})
        )
    else:
        split = eval_kwargs.get("split", "(no split)")
        print(f"{args.checkpoint} on {env_id} {split}:")
        print("\n".join("  " + line for line in report.lines()))
        print(f"  greedy answers: {report.reasons}")
        for prompt, completion, reward in report.examples:
            print(f"  {prompt.splitlines()[0]!r} -> {completion!r} (reward {reward:g})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``grpo`` command."""
    args = build_parser().parse_args(argv)
    if args.command == "train":
        return cmd_train(args)
    return cmd_eval(args)


if __name__ == "__main__":
    sys.exit(main())
