"""The evaluation report of `grpo eval` and `grpo train`: pass@k's unbiased estimator, the
confidence intervals, and the report on a policy whose answers are known."""

from __future__ import annotations

import itertools
import math
import random

import gymnasium as gym
import pytest

import grpo_envs  # noqa: F401 - registers the grpo/* ids
from grpo_agent.run.accuracy import evaluate_report, mean_interval, pass_at_k, wilson_interval


def test_pass_at_k_is_the_probability_that_k_of_n_samples_hold_a_correct_one():
    # Enumerate every k-subset of n samples with c correct: the exact probability that a random
    # subset holds at least one correct sample is what the estimator must give (Chen et al. 2021).
    for n, c, k in [(8, 0, 1), (8, 1, 1), (8, 1, 4), (8, 3, 4), (8, 5, 8), (6, 2, 3), (10, 9, 2)]:
        samples = [1] * c + [0] * (n - c)
        subsets = list(itertools.combinations(range(n), k))
        exact = sum(any(samples[i] for i in s) for s in subsets) / len(subsets)
        assert pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12), (n, c, k)
    assert pass_at_k(8, 3, 1) == pytest.approx(3 / 8)  # pass@1 is the fraction correct
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 8)


def test_intervals_cover_the_truth_about_95_percent_of_the_time():
    rng = random.Random(0)
    p, n, trials = 0.3, 200, 400
    wilson = normal = 0
    for _ in range(trials):
        hits = [int(rng.random() < p) for _ in range(n)]
        low, high = wilson_interval(sum(hits), n)
        wilson += low <= p <= high
        low, high = mean_interval([float(h) for h in hits])
        normal += low <= p <= high
    assert 0.9 <= wilson / trials <= 0.99 and 0.9 <= normal / trials <= 0.99
    assert (
        wilson_interval(0, 50)[0] == pytest.approx(0.0, abs=1e-12) and wilson_interval(0, 50)[1] > 0.0
    )  # not degenerate at 0%
    low, high = wilson_interval(30, 100)
    assert low < 0.3 < high and math.isclose(high - low, 0.18, abs_tol=0.01)


class ScriptedPolicy:
    """Answers task k's prompt correctly on its first ``right[k]`` samples (greedy: sample 0)."""

    training = False

    def __init__(self, env, right):
        self.env, self.right = env.unwrapped, right
        self.temperature = 1.0
        self.generator = None

    def eval(self):
        return self

    def train(self, mode=True):
        return self

    def sample(self, prompts, n=1, deterministic=False):
        by_prompt = {self.env.tasks[k].prompt: k for k in range(len(self.right))}
        actions = []
        for prompt in prompts:
            k = by_prompt[prompt]
            reference = int(self.env.tasks[k].reference)
            count = min(self.right[k], 1) if deterministic else self.right[k]
            actions += [str(reference if i < count else reference + 1) for i in range(n)]
        return type("Batch", (), {"actions": actions})()


def test_report_on_known_answers():
    env = gym.make("grpo/Math-v0", levels=6, num_tasks=4, split="test")
    right = [0, 1, 4, 8]  # correct samples of 8, per task
    report = evaluate_report(ScriptedPolicy(env, right), env, n_tasks=4, temperature=0.7)
    assert report.n_tasks == 4 and report.n_samples == 8 and report.temperature == 0.7
    assert report.greedy.value == pytest.approx(3 / 4)
    assert report.sampled.value == pytest.approx(sum(right) / 32)
    assert report.pass_at[1].value == pytest.approx(report.sampled.value)
    assert report.pass_at[8].value == pytest.approx(3 / 4)
    assert report.pass_at[4].value == pytest.approx((0 + 0.5 + pass_at_k(8, 4, 4) + 1) / 4)
    for estimate in (report.greedy, report.sampled, *report.pass_at.values()):
        assert 0.0 <= estimate.low <= estimate.value <= estimate.high <= 1.0
    d = report.as_dict()
    assert set(d) >= {"greedy_accuracy", "sampled_accuracy", "pass@1", "pass@4", "pass@8", "n_tasks"}
