"""Scoring on Ray workers: the in-process rewards in the same order, and a dead worker costs its
completions a zero with a reason, never the rollout. One local Ray (2 CPUs) serves the module."""

from __future__ import annotations

import logging
import os
import pathlib
from collections.abc import Iterator

import dying_env  # noqa: F401 - registers test/Dying-v0
import gymnasium as gym
import pytest
import ray
from reward_pool_checks import assert_pool_scores_like_this_process

import grpo_envs  # noqa: F401 - registers the grpo/* ids
from grpo_agent import GRPO
from grpo_agent.common.ray_rewards import RayRewardPool
from grpo_agent.common.reward_workers import WORKER_DIED


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    # The tests' own folder on the workers' path: the dying env's module lives there.
    path = os.pathsep.join([str(pathlib.Path(__file__).resolve().parent), os.environ.get("PYTHONPATH", "")])
    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
        runtime_env={"env_vars": {"PYTHONPATH": path}},
    )  # fmt: skip
    yield
    ray.shutdown()


def test_ray_workers_give_the_in_process_rewards_in_input_order() -> None:
    assert_pool_scores_like_this_process(RayRewardPool)


def test_a_ray_worker_that_dies_costs_its_completions_a_zero_and_fresh_workers_follow() -> None:
    pool = RayRewardPool(gym.make("test/Dying-v0"), 2)
    try:
        # one completion per call, dealt in turn: the first worker gets "ab" and "abc", the
        # second "die" and then "abcd", which it never scores
        results = pool.score(["ab", "die", "abc", "abcd"], [0, 0, 0, 0])
        assert [r[0] for r in results] == [2.0, 0.0, 3.0, 0.0]
        assert [r[3]["reason"] for r in results] == ["correct", WORKER_DIED, "correct", WORKER_DIED]
        assert pool.worker_deaths == 2
        assert pool.score(["abcd"], [0])[0][0] == 4.0  # new workers for the next rollout
    finally:
        pool.close()


def test_more_workers_than_the_cluster_has_cpus_is_refused() -> None:
    pool = RayRewardPool(gym.make("grpo/Math-v0", levels=1, num_tasks=4), 3)
    with pytest.raises(ValueError, match="2 CPUs for 3 reward workers"):
        pool.score(["1"], [0])


def test_grpo_trains_with_ray_workers_and_logs_their_deaths() -> None:
    env = gym.make("grpo/Bandit-v0", noise_std=0.0)
    model = GRPO("tabular", env, group_size=4, n_groups=4, seed=0, reward_workers=2, reward_backend="ray")
    model.learn(32)
    assert isinstance(model._reward_pool, RayRewardPool)
    assert model.logger.name_to_value["rollout/reward_worker_deaths"] == 0
    model._reward_pool.close()
    with pytest.raises(ValueError, match="reward_workers >= 1"):
        GRPO("tabular", env, reward_backend="ray")


def test_grpo_train_refuses_ray_without_workers_before_writing(tmp_path: pathlib.Path) -> None:
    from grpo_agent import cli

    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--reward-backend", "ray", "--output", str(tmp_path / "run")])
    assert exit_.value.code == 2 and not (tmp_path / "run").exists()
