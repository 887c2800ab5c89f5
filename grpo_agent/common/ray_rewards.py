"""Scoring a rollout's completions on Ray workers, each with its own copy of the env.

The same contract as :class:`~grpo_agent.common.reward_workers.RewardWorkerPool` (results in
input order; a worker that dies costs the completions it held a reward of 0 with
``info["reason"] == "reward_worker_died"``, counted in ``worker_deaths``, and fresh workers
score the next rollout), with Ray actors instead of local processes, so the workers may live on
other machines of a Ray cluster. Each actor rebuilds the env from its spec
(``gym.make(env.spec)``), so the env's package must be importable where the actors run.

Ray is an optional dependency (``pip install 'grpo-gym[ray]'``). With no Ray running, the first
rollout starts a local one (or joins ``address``, or ``RAY_ADDRESS``); a Ray started by the
caller (``ray.init(...)``) is used as it is. Either way it stays up for the process's lifetime.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Sequence
from typing import Any

import gymnasium as gym

from grpo_agent.common.reward_workers import Scored, chunks, died, score_many, worker_env_spec


class _EnvScorer:
    """A Ray actor's state: its own env, rebuilt from the spec."""

    def __init__(self, spec: Any) -> None:
        import grpo_envs  # noqa: F401 - registers the grpo/* ids the spec may refer to

        self.env = gym.make(spec)

    def score(self, task_ids: list[Any], actions: list[Any]) -> list[Scored]:
        return score_many(self.env, task_ids, actions)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ImportError("reward_backend='ray' needs Ray: pip install 'grpo-gym[ray]'") from exc
    return ray


class RayRewardPool:
    """``n_workers`` Ray actors that score completions against tasks of one env.

    :param env: an env made by ``gym.make``.
    :param n_workers: actors to score on (each asks Ray for one CPU).
    :param address: the Ray cluster to join when none is running here (None: ``RAY_ADDRESS``, or
        a new local one).
    :raises ValueError: when the env has no spec, ``n_workers < 1``, or the cluster has fewer
        CPUs than ``n_workers`` (the actors would wait for them forever).
    :raises ImportError: when Ray is not installed.
    """

    def __init__(self, env: gym.Env, n_workers: int, address: str | None = None) -> None:
        self.spec = worker_env_spec(env, n_workers)
        self.n_workers = n_workers
        self.address = address
        #: Completions scored 0 because their worker died.
        self.worker_deaths = 0
        self._actors: list[Any] | None = None
        _import_ray()  # fail here, at construction, when Ray is missing

    def _workers(self) -> list[Any]:
        ray = _import_ray()
        if self._actors is None:
            if not ray.is_initialized():
                # Quiet: no dashboard, no worker output copied into the trainer's, errors only.
                ray.init(
                    address=self.address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR
                )
            cpus = ray.cluster_resources().get("CPU", 0)
            if cpus < self.n_workers:
                raise ValueError(
                    f"the Ray cluster has {cpus:g} CPUs for {self.n_workers} reward workers; "
                    "ask for fewer reward_workers or start Ray with more CPUs"
                )
            actor = ray.remote(num_cpus=1, max_restarts=0)(_EnvScorer)
            self._actors = [actor.remote(self.spec) for _ in range(self.n_workers)]
            weakref.finalize(self, _kill, ray, list(self._actors))
        return self._actors

    def score(self, actions: Sequence[Any], task_ids: Sequence[Any]) -> list[Scored]:
        """Score ``actions[i]`` on task ``task_ids[i]``; the results are in input order."""
        if len(actions) != len(task_ids):
            raise ValueError(f"one task id per completion: {len(actions)} completions, {len(task_ids)} task ids")
        ray = _import_ray()
        actors = self._workers()
        size, starts = chunks(len(actions), len(actors))
        calls = [
            actors[k % len(actors)].score.remote(list(task_ids[i : i + size]), list(actions[i : i + size]))
            for k, i in enumerate(starts)
        ]
        results: list[Scored] = []
        broken = False
        for call, start in zip(calls, starts):
            try:
                results.extend(ray.get(call))
            except ray.exceptions.RayActorError:  # the actor's process died (crash, OOM killer, lost node)
                broken = True
                lost = min(size, len(actions) - start)
                self.worker_deaths += lost
                results.extend(died(lost))
        if broken:  # fresh actors for the next rollout
            self.close()
        return results

    def close(self) -> None:
        """Stop the actors (new ones start on the next :meth:`score`); Ray itself stays up."""
        if self._actors is not None:
            _kill(_import_ray(), self._actors)
            self._actors = None

    def __getstate__(self) -> dict[str, Any]:
        # A saved agent keeps the setting, not the actors.
        return {**self.__dict__, "_actors": None}


def _kill(ray: Any, actors: list[Any]) -> None:
    if ray.is_initialized():
        for actor in actors:
            ray.kill(actor)
