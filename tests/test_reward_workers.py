"""Scoring completions in worker processes: same rewards in the same order, and a dead worker
costs its completions a zero with a reason, never the rollout."""

from __future__ import annotations

import zipfile

import cloudpickle
import dying_env  # noqa: F401 - registers test/Dying-v0
import gymnasium as gym
import pytest
import torch
from benchmark_scripts import load
from reward_pool_checks import assert_pool_scores_like_this_process

import grpo_envs  # noqa: F401 - registers the grpo/* ids
from grpo_agent import GRPO
from grpo_agent.common.reward_workers import WORKER_DIED, RewardWorkerPool


def test_workers_give_the_in_process_rewards_in_input_order() -> None:
    assert_pool_scores_like_this_process(RewardWorkerPool)


def test_a_worker_that_dies_costs_its_completion_a_zero_and_the_pool_recovers() -> None:
    pool = RewardWorkerPool(gym.make("test/Dying-v0"), 1)
    try:
        results = pool.score(["ab", "die", "abc"], [0, 0, 0])
        assert results[1][0] == 0.0 and results[1][3]["reason"] == WORKER_DIED
        assert pool.worker_deaths >= 1
        assert pool.score(["abcd"], [0])[0][0] == 4.0  # a new pool for the next rollout
    finally:
        pool.close()


def test_a_worker_that_dies_costs_its_run_and_the_unfinished_ones_never_the_finished() -> None:
    """The pool sends runs of completions (16 on one worker: runs of 2); the run that holds the
    crash and every run after it score 0 with the reason (the process pool breaks as a whole),
    the runs before keep their rewards, and the count says how many were lost."""
    pool = RewardWorkerPool(gym.make("test/Dying-v0"), 1)
    try:
        actions = ["ab"] * 6 + ["die"] + ["abc"] * 9
        results = pool.score(actions, [0] * len(actions))
        assert [r[0] for r in results[:6]] == [2.0] * 6
        assert all(r[0] == 0.0 and r[3]["reason"] == WORKER_DIED for r in results[6:])
        assert len(results) == 16 and pool.worker_deaths == 10
    finally:
        pool.close()


def test_an_env_without_a_spec_is_refused_with_the_fix() -> None:
    from grpo_envs.envs.bandit import ContextualBanditEnv

    with pytest.raises(ValueError, match=r"gym\.make"):
        RewardWorkerPool(ContextualBanditEnv(), 2)
    with pytest.raises(ValueError, match="reward_workers"):
        GRPO("tabular", gym.make("grpo/Bandit-v0"), reward_workers=-1)


def test_grpo_learns_the_same_with_reward_workers(tmp_path) -> None:
    def train(workers: int) -> GRPO:
        env = gym.make("grpo/Bandit-v0", noise_std=0.0)  # noise-free: the rewards cannot depend on who scores
        model = GRPO("tabular", env, learning_rate=0.1, group_size=4, n_groups=8, seed=0, reward_workers=workers)
        model.learn(128)
        return model

    here, there = train(0), train(2)
    assert torch.equal(here.policy.logits, there.policy.logits)
    assert there._reward_pool is not None and there._reward_pool.worker_deaths == 0
    there.save(tmp_path / "agent")
    with zipfile.ZipFile(tmp_path / "agent.zip") as archive:
        saved = cloudpickle.loads(archive.read("data.pkl"))
    assert saved["reward_workers"] == 2 and "_reward_pool" not in saved
    there._reward_pool.close()


def test_the_reward_scale_benchmark_runs(tmp_path) -> None:
    bench = load("reward_scale")
    argv = ["--workers", "1", "--problems", "2", "--math-tasks", "4", "--no-ray", "--out-dir", str(tmp_path)]
    assert bench.main(argv) == 0  # the Ray rows: test_ray_rewards
    table = (tmp_path / "reward_scale.md").read_text()
    assert "| Code-v0 (HumanEval canonical, 2) | 1 worker(s) |" in table and "1.000" in table
