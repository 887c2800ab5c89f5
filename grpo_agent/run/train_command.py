"""``grpo train``: warm start (tiny policy), held-out accuracy before, training with checkpoints
and a live progress bar, held-out accuracy after, and a run folder that ``--resume`` continues."""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time
import weakref
from typing import Any

from grpo_agent.common import distributed
from grpo_agent.run.settings import (
    algorithm_class,
    build_algorithm,
    build_policy,
    policy_device,
    resolve_env_kwargs,
    settings_from_args,
)


def _quiet(*_args: Any, **_kwargs: Any) -> None:
    """``print`` on the processes that are not rank 0."""


def _train_quietly(model: Any, settings: dict[str, Any], resuming: bool, run_dir: pathlib.Path, eval_env: Any) -> int:
    """A non-main process's share of the training: the same learn() calls as rank 0's, no output.

    A sharded model has no whole copy anywhere, so this process also takes part in every step
    where rank 0 needs one: the checkpoints, the held-out evaluations and the exported model (it
    evaluates the same tasks and writes nothing). Under DeepSpeed the weights are whole
    everywhere, and only the checkpoints (the optimiser's partitions) need every process."""
    from stable_baselines3.common.logger import Logger

    from grpo_agent.run import run_folder as rf
    from grpo_agent.run.accuracy import evaluate_report
    from grpo_agent.run.faults import atomic_save

    model.set_logger(Logger(folder=None, output_formats=[]))
    sharded, collective = model.policy.sharding_plan is not None, model.saves_collectively
    callbacks: list[Any] = [rf.RunCallback(run_dir, settings["save_every"])] if collective else []
    if sharded:
        callbacks.append(rf.HeldoutAccuracyCallback(eval_env, settings["eval_tasks"], settings.get("eval_every", 0)))
    remaining = settings["total_timesteps"] - model.num_timesteps
    if remaining > 0:
        model.learn(
            remaining, callback=callbacks or None, reset_num_timesteps=not resuming and model.num_timesteps == 0
        )
    if collective:  # rank 0's steps after training, in the same order (see _train)
        atomic_save(model, run_dir / rf.CHECKPOINT_FILE)
    if sharded:
        model.policy.save_pretrained(run_dir / rf.MODEL_DIR)
        evaluate_report(model.policy, eval_env, settings["eval_tasks"])
    return 0


def _sharding_plans(settings: dict[str, Any]) -> dict[str, Any]:
    """The ``fsdp`` (FSDP2 plan) and ``deepspeed`` (ZeRO plan) arguments of the agent, from the
    config file of ``accelerate launch --config_file`` (None each, outside one that asks).

    :raises ValueError: when the config asks for FSDP or DeepSpeed that this run cannot use.
    """
    plans: dict[str, Any] = {"fsdp": None, "deepspeed": None}
    if not distributed.is_distributed():
        return plans
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() in ("1", "true"):
        if settings["algo"] != "grpo":  # PPO adds its critic to the optimiser after DeepSpeed wrapped it
            raise ValueError(f"DeepSpeed runs GRPO only, not --algo {settings['algo']}; launch it without DeepSpeed")
        from grpo_agent.common.deepspeed_support import ZeroPlan

        plans["deepspeed"] = ZeroPlan.from_accelerate_environment()
        return plans
    from grpo_agent.policies.sharding import ShardingPlan

    plan = ShardingPlan.from_accelerate_environment()
    if plan is not None and settings["policy"] == "tabular":
        raise ValueError("FSDP shards language models, not --policy tabular (a small table); launch it without FSDP")
    plans["fsdp"] = plan
    return plans


def torchrun_command(processes: int, argv: list[str]) -> list[str]:
    """The command that runs ``grpo <argv>`` in ``processes`` processes with torchrun, without
    the ``--num-processes`` option that asked for it. ``--standalone``: one machine, a free port."""
    rest: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--num-processes":
            skip = True
        elif not arg.startswith("--num-processes="):
            rest.append(arg)
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
        "-m", "grpo_agent.cli", *rest,
    ]  # fmt: skip


def launch_processes(processes: int, argv: list[str]) -> int:
    """``grpo train --num-processes N``: the same command in N processes (torchrun); its exit status."""
    import subprocess

    return subprocess.call(torchrun_command(processes, argv))


def cmd_train(args: argparse.Namespace) -> int:
    """``grpo train``: see the module docstring and ``grpo train --help``.

    Under ``torchrun`` (``WORLD_SIZE > 1``) every process trains its share of each rollout
    (:mod:`grpo_agent.common.distributed`) and rank 0 alone warms the tiny model up (the others
    load its cache), evaluates, prints and writes the run folder."""
    already = distributed.is_distributed()
    started_group = distributed.init_from_environment() and not already
    try:
        code = _train(args, distributed.is_main_process())
        if started_group:
            # Every process leaves together: a process that tore the gloo group down while
            # rank 0 was still writing was seen to abort ("terminate called without an active
            # exception", SIGABRT) in 1 of 5 CI runs of the FSDP test.
            distributed.barrier()
        return code
    finally:
        if started_group:  # a group this command started ends with it
            import torch.distributed as dist

            dist.destroy_process_group()


def _train(args: argparse.Namespace, main: bool) -> int:
    """The run itself; ``main`` is False on every process but rank 0 of a multi-process run."""
    import gymnasium as gym
    import torch

    import grpo_envs  # noqa: F401 - registers the grpo/* ids
    from grpo_agent.common.utils import set_random_seed
    from grpo_agent.run import run_folder as rf
    from grpo_agent.run.accuracy import evaluate_report, mean_greedy_reward
    from grpo_agent.run.faults import atomic_save, is_oom, oom_message
    from grpo_agent.run.tracking import CompletionsTableCallback

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
        settings = settings_from_args(args)
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
    try:
        plans = _sharding_plans(settings)
    except ValueError as exc:
        print(f"grpo train: {exc}", file=sys.stderr)
        return 2
    if main and not resuming:
        run_dir.mkdir(parents=True, exist_ok=True)
        rf.write_json_atomic(run_dir / rf.CONFIG_FILE, settings)

    env_kwargs, eval_kwargs, has_split = resolve_env_kwargs(settings["env"], settings["env_kwargs"])
    train_env = gym.make(settings["env"], **env_kwargs)
    eval_env = gym.make(settings["env"], **eval_kwargs)
    set_random_seed(settings["seed"])
    show = not args.no_progress and main
    say = print if main else _quiet
    say(f"run folder: {run_dir}")

    previous = json.loads((run_dir / rf.SUMMARY_FILE).read_text()) if (run_dir / rf.SUMMARY_FILE).exists() else {}
    algo_class = algorithm_class(settings["algo"])
    # A Discrete env (grpo/Bandit-v0, --policy tabular) has no task list to score accuracy on.
    has_tasks = hasattr(eval_env.unwrapped, "num_tasks")
    where = "held-out" if has_split else "training tasks (the env has no held-out split)"
    if not has_tasks:
        where = f"mean reward of the greedy action over {settings['eval_tasks']} episodes"
    if resuming:
        model = algo_class.load(  # a run may resume with or without FSDP or DeepSpeed
            run_dir / rf.CHECKPOINT_FILE, env=train_env, device=policy_device(settings), **plans
        )
        before = previous.get("heldout_accuracy_before")
        before_report = previous.get("heldout_before")
        say(f"resuming at {model.num_timesteps} / {settings['total_timesteps']} completions")
    else:
        # Rank 0 warms the tiny model up; the others wait, then load its cache.
        if not main:
            distributed.barrier()
        policy = build_policy(settings, train_env, verbose=1 if main else 0)
        if main:
            distributed.barrier()
        say(f"policy: {policy}")
        before, before_report = None, None
        if main and has_tasks:
            count = min(settings["eval_tasks"], getattr(eval_env.unwrapped, "num_tasks", 0))
            say(f"evaluating {count} {'held-out' if has_split else 'training'} tasks: greedy, then 8 samples each")
            report = evaluate_report(policy, eval_env, settings["eval_tasks"])
            before, before_report = report.greedy.value, report.as_dict()
            say(f"{where} before training:")
            say("\n".join("  " + line for line in report.lines()))
        elif main:
            before = mean_greedy_reward(policy, eval_env, settings["eval_tasks"], settings["seed"])
            say(f"{where} before training: {before:.3f}")
        model = build_algorithm(settings, policy, train_env, **plans)
    if not main:  # the other processes train, and write nothing
        return _train_quietly(model, settings, resuming, run_dir, eval_env)
    run_logger = rf.make_run_logger(
        run_dir, stdout=args.verbose >= 1, report_to=settings.get("report_to", "tensorboard"), settings=settings
    )
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
                    CompletionsTableCallback(run_dir, settings.get("log_completions_every", 0)),
                    rf.HeldoutAccuracyCallback(
                        eval_env, settings["eval_tasks"], settings.get("eval_every", 0) if has_tasks else 0
                    ),
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
    sharded = model.policy.sharding_plan is not None
    if status == "finished" or (model.num_timesteps > 0 and not model.saves_collectively):
        # A sharded model (or DeepSpeed's optimiser) is only whole when every process gathers
        # it; after Ctrl-C the others may be gone, so such a run keeps its last periodic checkpoint.
        atomic_save(model, run_dir / rf.CHECKPOINT_FILE)
    if status == "interrupted":
        summary.update(status=status, timesteps=model.num_timesteps)
        rf.write_summary(run_dir, {**previous, **summary})
        print(f"checkpoint saved; continue with: grpo train --resume {run_dir}", file=sys.stderr)
        return code
    if hasattr(model.policy, "save_pretrained"):
        model.policy.save_pretrained(run_dir / rf.MODEL_DIR)
    after_report = evaluate_report(model.policy, eval_env, settings["eval_tasks"]) if has_tasks else None
    after = (
        after_report.greedy.value
        if after_report is not None
        else mean_greedy_reward(model.policy, eval_env, settings["eval_tasks"], settings["seed"])
    )
    optimizer_skips = getattr(model.optimizer, "skipped_steps", 0)
    summary.update(
        status="finished",
        heldout_accuracy_after=after,
        heldout_after=after_report.as_dict() if after_report is not None else None,
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
        processes=distributed.world_size(),
        fsdp=sharded,
        deepspeed=None if model.deepspeed is None or model._deepspeed_engine is None else model.deepspeed.stage,
    )
    rf.write_summary(run_dir, {**previous, **summary})
    rf.plot_reward_curve(
        run_dir, f"{settings['algo'].upper()} {settings['policy']} on {settings['env']}", before, after
    )
    if after_report is None:
        print(f"{where}: {before:.3f} -> {after:.3f}; run folder: {run_dir}")
        return 0
    print(f"{where} after training:")
    print("\n".join("  " + line for line in after_report.lines()))
    gain = "" if before is None else f"{before:.1%} -> {after:.1%} ({summary['heldout_gain_points']:+.1f} points) "
    print(f"held-out accuracy (greedy): {gain}in {summary['wall_seconds']:.0f}s; run folder: {run_dir}")
    return 0


# -- eval -------------------------------------------------------------------------------------
