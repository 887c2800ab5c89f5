"""What a ``grpo train`` run is made of: the main job's defaults, the settings a command line
describes, and the env, policy and algorithm built from them.

The settings are a plain dict, saved as the run folder's config so that ``--resume`` and
``grpo eval`` rebuild the same run.
"""

from __future__ import annotations

import argparse
import inspect
import json
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
#: The tabular policy's logits are free parameters of order 1: 0.05 is GRPO's docstring
#: example on grpo/Bandit-v0 (1e-6 would only break the uniform table's ties).
TABULAR_LEARNING_RATE = 0.05
#: 300 updates of 16 prompts x 8 completions.
DEFAULT_TOTAL_TIMESTEPS = 38_400
DEFAULT_EVAL_TASKS = 200
#: Updates between mid-run held-out evaluations (greedy; the reward curve's accuracy points).
DEFAULT_EVAL_EVERY = 50


def env_accepts(env_id: str, name: str) -> bool:
    """Whether the registered env's constructor takes a parameter ``name``."""
    import gymnasium as gym

    spec = gym.spec(env_id)
    entry: Any = spec.entry_point
    if isinstance(entry, str):
        module, attr = entry.split(":")
        entry = getattr(__import__(module, fromlist=[attr]), attr)
    try:
        return name in inspect.signature(entry).parameters
    except (TypeError, ValueError):
        return False


def env_problem(env_id: str, env_kwargs_json: str | None, policy: str = "tiny") -> str | None:
    """What is wrong with an env id, its ``--env-kwargs`` and the ``--policy`` for it, in one
    sentence (None: nothing), checked before a run writes anything."""
    import gymnasium as gym

    import grpo_envs  # noqa: F401 - registers the grpo/* ids
    from grpo_envs.core import TextBanditEnv

    try:
        spec = gym.spec(env_id)
    except gym.error.Error:
        known = ", ".join(sorted(i for i in gym.registry if i.startswith("grpo/")))
        return f"unknown env id {env_id!r}; the registered ones are {known} (register your own before running)"
    entry: Any = spec.entry_point
    if isinstance(entry, str):
        module, attr = entry.split(":")
        entry = getattr(__import__(module, fromlist=[attr]), attr)
    text_env = not isinstance(entry, type) or issubclass(entry, TextBanditEnv)
    if not text_env and policy != "tabular":
        return (
            f"{env_id} is not a text env ({entry.__name__}) and --policy {policy} is a language model; "
            "use --policy tabular for its Discrete spaces"
        )
    if text_env and policy == "tabular":
        return f"--policy tabular needs Discrete spaces and {env_id} is a text env; use --policy tiny or a model folder"
    if not env_kwargs_json:
        return None
    try:
        kwargs = json.loads(env_kwargs_json)
    except ValueError as exc:
        return f"--env-kwargs is not JSON ({exc}): give an object such as '{{\"levels\": 1}}'"
    if not isinstance(kwargs, dict):
        return f"--env-kwargs must be a JSON object such as '{{\"levels\": 1}}', got {env_kwargs_json!r}"
    try:
        params = inspect.signature(entry).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None  # forwarded elsewhere: the env itself will say
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        return f"{env_id} takes no argument {', '.join(unknown)}; it takes {', '.join(sorted(params))}"
    return None


def policy_kwargs_problem(policy: str, kwargs: dict[str, Any] | None) -> str | None:
    """What is wrong with ``--policy-kwargs`` for ``--policy``, in one sentence (None: nothing):
    a key the policy's constructor does not take."""
    if not kwargs:
        return None
    from grpo_agent.policies.causal_lm import CausalLMPolicy
    from grpo_agent.policies.tabular import TabularPolicy
    from grpo_agent.policies.tiny import TinyPolicy

    # TinyPolicy forwards its **kwargs to CausalLMPolicy; the spaces, env and model are the CLI's.
    classes = {"tiny": (TinyPolicy, CausalLMPolicy), "tabular": (TabularPolicy,)}.get(policy, (CausalLMPolicy,))
    built_here = {"self", "observation_space", "action_space", "env", "model", "kwargs", "device"}
    taken = {name for cls in classes for name in inspect.signature(cls).parameters} - built_here
    unknown = sorted(set(kwargs) - taken)
    if unknown:
        return (
            f"--policy-kwargs: {classes[0].__name__} takes no argument {', '.join(unknown)}; "
            f"it takes {', '.join(sorted(taken))}"
        )
    return None


def resolve_env_kwargs(env_id: str, given: str | None) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """``(train kwargs, held-out kwargs, has_split)`` for ``env_id``: the given JSON (or the main
    job's default), and the same with ``split="test"`` when the env has a held-out split."""
    kwargs = json.loads(given) if given else dict(DEFAULT_ENV_KWARGS.get(env_id, {}))
    if not isinstance(kwargs, dict):
        raise SystemExit(f"--env-kwargs must be a JSON object such as '{{\"levels\": 1}}', got {given!r}")
    has_split = env_accepts(env_id, "split")
    eval_kwargs = {**kwargs, "split": "test"} if has_split else dict(kwargs)
    if has_split:
        kwargs.setdefault("split", "train")
    return kwargs, eval_kwargs, has_split


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


def settings_from_args(args: argparse.Namespace) -> dict[str, Any]:
    from grpo_agent.run.cli_options import algorithm_kwargs

    tiny = args.policy == "tiny"
    return {
        "env": args.env,
        "env_kwargs": args.env_kwargs,
        "algo": args.algo,
        "policy": args.policy,
        "policy_kwargs": args.policy_kwargs or {},
        "sft": sft_settings(args.policy, args.env, args.env_kwargs, args.sft_steps, args.sft_target_accuracy),
        "total_timesteps": args.total_timesteps or DEFAULT_TOTAL_TIMESTEPS,
        "group_size": args.group_size,
        "n_groups": args.n_groups,
        "learning_rate": args.learning_rate
        if args.learning_rate is not None
        else {"tiny": TINY_LEARNING_RATE, "tabular": TABULAR_LEARNING_RATE}.get(args.policy, PRETRAINED_LEARNING_RATE),
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
        "report_to": args.report_to,
        "log_completions_every": args.log_completions_every,
        # the generated options the user gave (the constructor's defaults rule the rest)
        "algorithm_options": algorithm_kwargs(args, args.algo, getattr(args, "algorithm_options", [])),
    }


def policy_device(settings: dict[str, Any]) -> str:
    """``--device``, except that ``auto`` keeps the tiny model and the tabular policy on the
    CPU: at 0.9M parameters (or a table) a GPU's kernel-launch overhead costs more than its
    arithmetic saves."""
    small = settings["policy"] in ("tiny", "tabular")
    return "cpu" if small and settings["device"] == "auto" else settings["device"]


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
    if settings["policy"] == "tabular":
        from grpo_agent.policies.tabular import TabularPolicy

        return TabularPolicy(env.observation_space, env.action_space, **settings.get("policy_kwargs", {}))
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
            device=policy_device(settings),
            **{**common, **settings.get("policy_kwargs", {})},
        )
    from grpo_agent.policies.causal_lm import CausalLMPolicy

    return CausalLMPolicy(
        env.observation_space,
        env.action_space,
        settings["policy"],
        device=settings["device"],
        **{**common, **settings.get("policy_kwargs", {})},
    )


def build_algorithm(settings: dict[str, Any], policy: Any, env: Any, fsdp: Any = None, deepspeed: Any = None) -> Any:
    """GRPO or PPO on ``policy``, with the run's hyperparameters and the non-finite guard
    (the policy, and PPO's critic, sharded by ``fsdp``, a :class:`~grpo_agent.policies.sharding.ShardingPlan`, or
    GRPO's optimiser partitioned by ``deepspeed``, a :class:`~grpo_agent.common.deepspeed_support.ZeroPlan`)."""
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
    options = settings.get("algorithm_options") or {}  # run folders written before them have none
    if settings["algo"] == "ppo":
        from grpo_agent.ppo import PPO

        n_steps = settings["n_groups"] * settings["group_size"]
        return PPO(policy, env, **{"n_steps": n_steps, **common, **options}, fsdp=fsdp)
    from grpo_agent.grpo import GRPO

    grpo_settings = {
        "group_size": settings["group_size"],
        "n_groups": settings["n_groups"],
        "loss_type": settings["loss_type"],
    }
    return GRPO(policy, env, **{**grpo_settings, **common, **options}, fsdp=fsdp, deepspeed=deepspeed)


def algorithm_class(name: str) -> Any:
    if name == "ppo":
        from grpo_agent.ppo import PPO

        return PPO
    from grpo_agent.grpo import GRPO

    return GRPO
