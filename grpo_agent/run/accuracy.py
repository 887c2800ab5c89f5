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
            for k, prompt, action in zip(ids, prompts, actions, strict=True):
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


# -- the full report: greedy, sampled, pass@k, with confidence intervals ---------------------

#: z of a two-sided 95% normal interval.
Z95 = 1.959963984540054
#: The k of pass@k that ``grpo eval`` reports (Chen et al. 2021 report 1, 10, 100 on HumanEval;
#: with 8 samples per task, 1, 4 and 8 are the estimable ones that span the range).
DEFAULT_PASS_KS = (1, 4, 8)


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased estimator of pass@k from ``n`` samples of which ``c`` are correct (Chen et
    al. 2021, "Evaluating Large Language Models Trained on Code", eq. 1):
    ``1 - C(n-c, k) / C(n, k)``, computed as a product to stay exact for large ``n``.

    >>> pass_at_k(8, 0, 4), pass_at_k(8, 8, 1), pass_at_k(8, 1, 1), round(pass_at_k(8, 1, 4), 4)
    (0.0, 1.0, 0.125, 0.5)
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    miss = 1.0
    for i in range(n - c + 1, n + 1):
        miss *= 1.0 - k / i
    return 1.0 - miss


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (good at 0% and 100%, unlike the
    normal one). ``(0, 1)`` when ``n == 0``."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5 / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_interval(values: list[float], z: float = Z95) -> tuple[float, float]:
    """A normal 95% interval of the mean of per-task values in [0, 1] (tasks are the sampling
    unit), clipped to [0, 1]."""
    n = len(values)
    if n == 0:
        return 0.0, 1.0
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    half = z * (var / n) ** 0.5
    return max(0.0, mean - half), min(1.0, mean + half)


@dataclass
class Estimate:
    """A measured fraction and its 95% confidence interval."""

    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.1%} [{self.low:.1%}, {self.high:.1%}]"


@dataclass
class EvalReport:
    """What :func:`evaluate_report` measured on ``n_tasks`` tasks.

    :param greedy: accuracy of greedy decoding (Wilson 95% interval).
    :param sampled: mean accuracy of samples at ``temperature`` (= pass@1; normal 95% interval
        over tasks).
    :param pass_at: pass@k for each k, unbiased estimator from ``n_samples`` samples per task
        (normal 95% interval over tasks).
    :param n_tasks: tasks evaluated.
    :param n_samples: samples per task.
    :param temperature: the sampling temperature.
    :param reasons: ``info["reason"]`` counts of the greedy answers.
    :param examples: a few greedy ``(prompt, completion, reward)`` triples.
    """

    greedy: Estimate
    sampled: Estimate
    pass_at: dict[int, Estimate]
    n_tasks: int
    n_samples: int
    temperature: float
    reasons: dict[str, int] = field(default_factory=dict)
    examples: list[tuple[str, str, float]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain numbers (for JSON and summaries): each estimate as value, low, high."""

        def est(e: Estimate) -> dict[str, float]:
            return {"value": e.value, "ci95_low": e.low, "ci95_high": e.high}

        return {
            "n_tasks": self.n_tasks,
            "n_samples": self.n_samples,
            "temperature": self.temperature,
            "greedy_accuracy": est(self.greedy),
            "sampled_accuracy": est(self.sampled),
            **{f"pass@{k}": est(e) for k, e in self.pass_at.items()},
            "reasons": self.reasons,
        }

    def lines(self) -> list[str]:
        """One line per quantity, to print."""
        return [
            f"greedy accuracy   {self.greedy}",
            f"sampled accuracy  {self.sampled}  (temperature {self.temperature:g}, {self.n_samples} samples per task)",
            *(f"pass@{k:<13}{e}" for k, e in self.pass_at.items()),
            f"tasks             {self.n_tasks} (95% intervals: Wilson for greedy, normal over tasks otherwise)",
        ]


def _correct_counts(policy: Any, env: gym.Env, count: int, n: int, deterministic: bool, batch_size: int) -> Any:
    """Per task: how many of ``n`` completions were correct; plus reasons and examples."""
    per_task: list[int] = []
    reasons: Counter[str] = Counter()
    examples: list[tuple[str, str, float]] = []
    prompts_per_batch = max(1, batch_size // n)
    for start in range(0, count, prompts_per_batch):
        ids = list(range(start, min(start + prompts_per_batch, count)))
        prompts = [env.reset(options={"task_id": k})[0] for k in ids]
        with torch.no_grad():
            actions = policy.sample(prompts, n=n, deterministic=deterministic).actions
        for j, k in enumerate(ids):
            hits = 0
            for action in actions[j * n : (j + 1) * n]:
                env.reset(options={"task_id": k})
                _, reward, _, _, info = env.step(action)
                hits += int(bool(info.get("correct", float(reward) >= 1.0)))
                reasons[str(info.get("reason", "unknown"))] += 1
                if len(examples) < 3:
                    examples.append((prompts[j], action, float(reward)))
            per_task.append(hits)
    return per_task, dict(reasons), examples


def evaluate_report(
    policy: Any,
    env: gym.Env,
    n_tasks: int | None = None,
    n_samples: int = max(DEFAULT_PASS_KS),
    ks: tuple[int, ...] = DEFAULT_PASS_KS,
    temperature: float | None = None,
    batch_size: int = DEFAULT_EVAL_BATCH,
) -> EvalReport:
    """Greedy accuracy, sampled accuracy and pass@k of ``policy`` on the first ``n_tasks``
    tasks of ``env``, each with a 95% confidence interval.

    Sampling uses ``temperature`` (default: the policy's own, i.e. the training temperature)
    and the policy's top-p; the policy's sampling RNG is restored afterwards, so evaluating
    during training does not change what training samples next.

    :param policy: a policy (or an agent with ``.policy``).
    :param env: a one-step text env with a fixed task list (the held-out split).
    :param n_tasks: how many tasks (None: all).
    :param n_samples: samples per task (at least ``max(ks)``).
    :param ks: the k of pass@k.
    :param temperature: sampling temperature (None: the policy's).
    :param batch_size: completions per generation batch.
    """
    policy = getattr(policy, "policy", policy)
    if n_samples < max(ks):
        raise ValueError(f"pass@{max(ks)} needs at least {max(ks)} samples per task, got n_samples={n_samples}")
    total = getattr(env.unwrapped, "num_tasks", None)
    if total is None:
        raise TypeError("evaluate_report needs a text bandit env with a fixed task list (env.unwrapped.num_tasks)")
    count = total if n_tasks is None else min(int(n_tasks), total)
    was_training = policy.training
    saved_temperature = getattr(policy, "temperature", None)
    generator = getattr(policy, "generator", None)
    rng_state = generator.get_state() if isinstance(generator, torch.Generator) else None
    policy.eval()
    try:
        greedy, reasons, examples = _correct_counts(policy, env, count, 1, True, batch_size)
        if temperature is not None:
            policy.temperature = float(temperature)
        sampled, _, _ = _correct_counts(policy, env, count, n_samples, False, batch_size)
    finally:
        policy.train(was_training)
        if saved_temperature is not None:
            policy.temperature = saved_temperature
        if rng_state is not None and isinstance(generator, torch.Generator):
            generator.set_state(rng_state)
    right = sum(greedy)
    per_task_mean = [c / n_samples for c in sampled]
    pass_at = {}
    for k in ks:
        values = [pass_at_k(n_samples, c, k) for c in sampled]
        pass_at[k] = Estimate(sum(values) / max(count, 1), *mean_interval(values))
    return EvalReport(
        greedy=Estimate(right / max(count, 1), *wilson_interval(right, count)),
        sampled=Estimate(sum(per_task_mean) / max(count, 1), *mean_interval(per_task_mean)),
        pass_at=pass_at,
        n_tasks=count,
        n_samples=n_samples,
        temperature=float(temperature if temperature is not None else (saved_temperature or 1.0)),
        reasons=reasons,
        examples=examples,
    )


def mean_greedy_reward(policy: Any, env: gym.Env, n_episodes: int, seed: int = 0) -> float:
    """Mean reward of ``policy``'s greedy action over ``n_episodes`` one-step episodes reset
    with seeds ``seed, seed + 1, ...``: the measure for envs without a task list (a Discrete
    bandit such as ``grpo/Bandit-v0``), where accuracy has no meaning.

    >>> import gymnasium as gym, grpo_envs
    >>> from grpo_agent import TabularPolicy
    >>> env = gym.make("grpo/Bandit-v0", noise_std=0.0)
    >>> 0.0 <= mean_greedy_reward(TabularPolicy(env.observation_space, env.action_space), env, 8) <= 1.0
    True
    """
    policy = getattr(policy, "policy", policy)
    observations = [env.reset(seed=seed + k)[0] for k in range(n_episodes)]
    with torch.no_grad():
        actions = policy.sample(observations, n=1, deterministic=True).actions
    total = 0.0
    for k, action in enumerate(actions):
        env.reset(seed=seed + k)
        total += float(env.step(action)[1])
    return total / max(n_episodes, 1)
