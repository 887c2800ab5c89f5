"""Scoring a rollout's completions in parallel worker processes, each with its own copy of the env.

Verifiers are CPU-bound (sympy, sandboxed unit tests, tool calls), and an env scores one
completion at a time; :class:`RewardWorkerPool` spreads a rollout over ``n_workers`` processes
and returns the results in input order. Each worker rebuilds the env from its spec
(``gym.make(env.spec)``), so only envs made by ``gym.make`` can be scored this way.

A worker that dies (a verifier that crashed the interpreter, the OOM killer) costs the
completions it held a reward of 0 with ``info["reason"] == "reward_worker_died"``, counted in
:attr:`RewardWorkerPool.worker_deaths`; the pool starts afresh for the next rollout, and the
run goes on.
"""

from __future__ import annotations

import math
import multiprocessing
import weakref
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

import gymnasium as gym

#: The reason given to a completion whose worker died before scoring it.
WORKER_DIED = "reward_worker_died"

#: One scored completion: ``(reward, terminated, truncated, info)``.
Scored = tuple[float, bool, bool, dict[str, Any]]

_worker_env: gym.Env | None = None  # the worker process's own env (set by its initializer)


def _start_worker(spec: Any) -> None:
    global _worker_env
    _worker_env = gym.make(spec)


def score_one(env: gym.Env, task_id: Any, action: Any) -> Scored:
    """``action`` scored on task ``task_id`` of ``env`` (one reset and one step)."""
    env.reset(options={"task_id": task_id})
    _, reward, terminated, truncated, info = env.step(action)
    return float(reward), bool(terminated), bool(truncated), dict(info)


def score_many(env: gym.Env, task_ids: Sequence[Any], actions: Sequence[Any]) -> list[Scored]:
    """:func:`score_one` for each pair, in order: one worker call's share of a rollout."""
    return [score_one(env, task_id, action) for task_id, action in zip(task_ids, actions, strict=True)]


def _score_in_worker(task_ids: list[Any], actions: list[Any]) -> list[Scored]:
    assert _worker_env is not None, "the worker's initializer builds its env"
    return score_many(_worker_env, task_ids, actions)


#: Calls per worker and rollout: several, so a slow task does not hold its worker's whole share
#: while the others idle, and few, so each call's round trip (pickling, a process wake-up; about
#: a millisecond on Ray) stays small beside cheap rewards. With one call per completion, two local
#: workers scored fast math answers at 0.4-0.6x the speed of the training process alone; with 8
#: calls per worker, 1.6-1.8x (benchmarks/reward_scale.py, 2,000 Math-v0 answers).
CHUNKS_PER_WORKER = 8


def chunks(n: int, n_workers: int) -> tuple[int, range]:
    """``(size, starts)``: ``n`` completions cut into about ``CHUNKS_PER_WORKER`` runs per worker."""
    size = max(1, math.ceil(n / (CHUNKS_PER_WORKER * n_workers)))
    return size, range(0, n, size)


class RewardPool(Protocol):
    """What scores a rollout's completions away from the env: :class:`RewardWorkerPool`, or
    :class:`~grpo_agent.common.ray_rewards.RayRewardPool`."""

    spec: Any
    worker_deaths: int

    def score(self, actions: Sequence[Any], task_ids: Sequence[Any]) -> list[Scored]: ...

    def close(self) -> None: ...


def worker_env_spec(env: gym.Env, n_workers: int) -> Any:
    """The spec each worker rebuilds ``env`` from.

    :raises ValueError: when the env has no spec, or ``n_workers < 1``.
    """
    if n_workers < 1:
        raise ValueError(f"reward_workers must be >= 1, got {n_workers}")
    if env.spec is None:
        raise ValueError(
            "reward_workers needs an env made with gym.make: each worker rebuilds it from its spec; "
            "register your env (gymnasium.register) and make it by id"
        )
    return env.spec


def died(count: int = 1) -> list[Scored]:
    """What a completion whose worker died scores."""
    return [(0.0, True, False, {"correct": False, "reason": WORKER_DIED}) for _ in range(count)]


class RewardWorkerPool:
    """``n_workers`` processes that score completions against tasks of one env.

    :param env: an env made by ``gym.make`` (its ``spec`` rebuilds it in each worker).
    :param n_workers: processes to score in.
    :raises ValueError: when the env has no spec, or ``n_workers < 1``.
    """

    def __init__(self, env: gym.Env, n_workers: int) -> None:
        self.spec = worker_env_spec(env, n_workers)
        self.n_workers = n_workers
        #: Completions scored 0 because their worker died.
        self.worker_deaths = 0
        self._executor: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            # spawn, not fork: the trainer holds torch's threads, which a forked child must not inherit
            self._executor = ProcessPoolExecutor(
                self.n_workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker, initargs=(self.spec,),
            )  # fmt: skip
            # The workers stop with the pool even if nobody calls close() (an agent dropped mid-run).
            weakref.finalize(self, self._executor.shutdown, wait=False, cancel_futures=True)
        return self._executor

    def score(self, actions: Sequence[Any], task_ids: Sequence[Any]) -> list[Scored]:
        """Score ``actions[i]`` on task ``task_ids[i]``; the results are in input order."""
        if len(actions) != len(task_ids):
            raise ValueError(f"one task id per completion: {len(actions)} completions, {len(task_ids)} task ids")
        pool = self._pool()
        size, starts = chunks(len(actions), self.n_workers)
        futures = [
            pool.submit(_score_in_worker, list(task_ids[i : i + size]), list(actions[i : i + size])) for i in starts
        ]
        results: list[Scored] = []
        broken = False
        for future, start in zip(futures, starts):
            try:
                results.extend(future.result())
            except BrokenProcessPool:  # the run a worker held, and every one not finished yet
                broken = True
                lost = min(size, len(actions) - start)
                self.worker_deaths += lost
                results.extend(died(lost))
        if broken:  # a dead worker breaks the whole executor: start a new one next time
            self.close()
        return results

    def close(self) -> None:
        """Stop the workers (a new pool starts on the next :meth:`score`)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __getstate__(self) -> dict[str, Any]:
        # A saved agent keeps the setting, not the processes.
        return {**self.__dict__, "_executor": None}
