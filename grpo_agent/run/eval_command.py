"""``grpo eval``: greedy accuracy, sampled accuracy and pass@k, with 95% intervals, of a run
folder, a checkpoint, a model folder or the tiny warm start, on any env."""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from typing import Any

from grpo_agent.run.settings import DEFAULT_ENV, algorithm_class, policy_device, resolve_env_kwargs, sft_settings


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
        algo = algorithm_class(run_settings.get("algo", "grpo"))
        device = policy_device({"policy": run_settings.get("policy", "tiny"), "device": args.device})
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
