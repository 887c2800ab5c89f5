"""Held-out accuracy of a policy on a text bandit: every task once, completions sampled in batches.

:func:`~grpo_agent.common.evaluation.evaluate_policy` plays episodes one at a time through
``model.predict``, like stable-baselines3; a language model is far faster when it answers many
prompts in one batch, so this function pins each task in turn (``options={"task_id": k}``),
samples the completions batch by batch, and lets the env verify each one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import torch

#: Prompts per generation batch: big enough to amortise the per-step overhead of sampling,
#: small enough for a laptop's memory with a 0.5B-parameter model and short answers.
DEFAULT_EVAL_BATCH = 128


@dataclass
class AccuracyReport:
    """What :func:`evaluate_accuracy` measured.

    :param accuracy: fraction of tasks answered correctly (``info["correct"]``).
    :param mean_reward: mean env reward.
    :param n_tasks: number of tasks evaluated.
    :param reasons: how many completions got each ``info["reason"]``.
    :param examples: a few ``(prompt, completion, reward)`` triples, for reading.
    """

    accuracy: float
    mean_reward: float
    n_tasks: int
    reasons: dict[str, int] = field(default_factory=dict)
    examples: list[tuple[str, str, float]] = field(default_factory=list)


def evaluate_accuracy(
    policy: Any,
    env: gym.Env,
    n_tasks: int | None = None,
    deterministic: bool = True,
    batch_size: int = DEFAULT_EVAL_BATCH,
    n_examples: int = 3,
) -> AccuracyReport:
    """Answer each of the first ``n_tasks`` tasks of ``env`` once and report the accuracy.

    :param policy: a :class:`~grpo_agent.policies.base.BasePolicy` (or an agent with ``.policy``).
    :param env: a one-step text env that accepts ``reset(options={"task_id": k})``; use the
        held-out split (e.g. ``gym.make("grpo/Math-v0", levels=1, split="test")``).
    :param n_tasks: how many tasks (None: all of the env's tasks).
    :param deterministic: greedy decoding (the default: a reproducible number) or sampling.
    :param batch_size: prompts per generation batch.
    :param n_examples: how many examples to keep in the report.
    """
    policy = getattr(policy, "policy", policy)
    total = getattr(env.unwrapped, "num_tasks", None)
    if total is None:
        raise TypeError("evaluate_accuracy needs a text bandit env with a fixed task list (env.unwrapped.num_tasks)")
    count = total if n_tasks is None else min(int(n_tasks), total)
    correct = 0
    reward_sum = 0.0
    reasons: Counter[str] = Counter()
    examples: list[tuple[str, str, float]] = []
    was_training = policy.training
    policy.eval()
    try:
        for start in range(0, count, batch_size):
            ids = list(range(start, min(start + batch_size, count)))
            prompts = [env.reset(options={"task_id": k})[0] for k in ids]
            with torch.no_grad():
                actions = policy.sample(prompts, n=1, deterministic=deterministic).actions
            for k, prompt, action in zip(ids, prompts, actions):
                env.reset(options={"task_id": k})
                _, reward, _, _, info = env.step(action)
                correct += int(bool(info.get("correct", float(reward) >= 1.0)))
                reward_sum += float(reward)
                reasons[str(info.get("reason", "unknown"))] += 1
                if len(examples) < n_examples:
                    examples.append((prompt, action, float(reward)))
    finally:
        policy.train(was_training)
    return AccuracyReport(correct / max(count, 1), reward_sum / max(count, 1), count, dict(reasons), examples)
