"""Rollout buffers: what a rollout collected, kept until the update has used it.

- :class:`GroupRolloutBuffer` (GRPO): ``G`` completions per prompt, their old log-probs,
  rewards and group-relative advantages.
- :class:`RolloutBuffer` (PPO): one completion per prompt with per-token values, advantages
  and returns.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from grpo_agent.common import distributed
from grpo_agent.common.advantages import DEFAULT_STD_EPS, AdvantageEstimator, ScaleRewards, estimate_advantages
from grpo_agent.common.multi_objective import (
    MultiObjectiveAggregation,
    normalize_then_sum_advantages,
    stack_components,
)
from grpo_agent.policies.base import CompletionBatch


@dataclass
class GroupRolloutSamples:
    """One minibatch drawn from a :class:`GroupRolloutBuffer`.

    :param completions: the completions (with their old log-probs and mask).
    :param advantages: ``(b,)`` one advantage per completion, or ``(b, T)`` per token when the
        buffer holds step-level terms.
    :param rewards: ``(b,)`` the combined rewards.
    :param ref_log_probs: ``(b, T)`` reference log-probs, or None when none were stored.
    """

    completions: CompletionBatch
    advantages: torch.Tensor
    rewards: torch.Tensor
    ref_log_probs: torch.Tensor | None


class RunningTaskBaseline:
    """A light learned baseline: an exponential moving average of each task's mean reward.

    It is keyed by ``task_id``; tasks never seen have no estimate (NaN), so the group mean is
    used alone for them. Unlike the group mean, it does not contain the completion's own
    reward, which removes the ``(G - 1) / G`` shrinkage of the group-mean baseline.

    :param decay: weight of the old estimate in each update (0.9 = about 10 updates of memory).
    """

    def __init__(self, decay: float = 0.9) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"baseline decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.values: dict[Any, float] = {}

    def __call__(self, task_ids: Sequence[Any]) -> torch.Tensor:
        """``(n,)`` the current estimates (NaN where unknown)."""
        return torch.tensor([self.values.get(k, float("nan")) for k in task_ids], dtype=torch.float64)

    def update(self, task_ids: Sequence[Any], group_means: Sequence[float]) -> None:
        """Move each task's estimate towards its latest group mean."""
        for k, m in zip(task_ids, group_means):
            old = self.values.get(k)
            self.values[k] = float(m) if old is None else self.decay * old + (1 - self.decay) * float(m)


class GroupRolloutBuffer:
    """Holds whole groups: ``group_size`` completions of each observation.

    Fill it with :meth:`add` (any number of whole groups at a time), call
    :meth:`compute_advantages`, then iterate minibatches with :meth:`get`. Groups can be
    removed before training (:meth:`keep_groups`), which is how dynamic sampling drops the
    groups without signal.

    :param group_size: completions per observation (G, TRL's ``num_generations``).
    :param device: where minibatches are put.
    """

    def __init__(self, group_size: int, device: torch.device | str = "cpu") -> None:
        if group_size < 2:
            raise ValueError(f"group_size must be >= 2 (a group of one has no relative advantage), got {group_size}")
        self.group_size = group_size
        self.device = torch.device(device)
        self.reset()

    def reset(self) -> None:
        """Empty the buffer."""
        self.observations: list[Any] = []
        self.task_ids: list[Any] = []
        self._chunks: list[CompletionBatch] = []
        self._completions: CompletionBatch | None = None
        self._rewards: list[np.ndarray] = []
        self._ref: list[torch.Tensor | None] = []
        self._step: list[torch.Tensor | None] = []
        self.reward_components: dict[str, list[np.ndarray]] = {}
        self.advantages: torch.Tensor | None = None
        #: ``(rows, T)`` per-token advantages when step-level terms were added, else None.
        self.token_advantages: torch.Tensor | None = None
        self.zero_std: torch.Tensor | None = None

    # -- filling ---------------------------------------------------------------------------

    def add(
        self,
        observations: Sequence[Any],
        task_ids: Sequence[Any],
        completions: CompletionBatch,
        rewards: np.ndarray | Sequence[float],
        ref_log_probs: torch.Tensor | None = None,
        reward_components: dict[str, np.ndarray] | None = None,
        step_advantages: torch.Tensor | None = None,
    ) -> None:
        """Add ``len(observations)`` whole groups.

        :param observations: one observation per group.
        :param task_ids: one task id per group (the key of the learned baseline).
        :param completions: ``len(observations) * group_size`` rows, grouped by observation.
        :param rewards: one combined reward per completion.
        :param ref_log_probs: ``(rows, T)`` reference log-probs, or None.
        :param reward_components: named per-completion reward components, for logging.
        :param step_advantages: ``(rows, T)`` per-token terms added to each completion's
            advantage (multi-turn step-level advantages, already weighted;
            :mod:`grpo_agent.common.step_advantages`), or None.
        """
        rows = len(observations) * self.group_size
        rewards = np.asarray(rewards, dtype=np.float64)
        if len(completions) != rows or rewards.shape != (rows,) or len(task_ids) != len(observations):
            raise ValueError(
                f"expected {len(observations)} task ids, {rows} completions and {rows} rewards for "
                f"{len(observations)} groups of {self.group_size}; "
                f"got {len(task_ids)}, {len(completions)}, {rewards.shape}"
            )
        self.observations.extend(observations)
        self.task_ids.extend(task_ids)
        self._chunks.append(completions)
        self._completions = None
        self._rewards.append(rewards)
        self._ref.append(ref_log_probs)
        self._step.append(step_advantages)
        for name, values in (reward_components or {}).items():
            self.reward_components.setdefault(name, []).append(np.asarray(values, dtype=np.float64))
        self.advantages = self.zero_std = self.token_advantages = None

    # -- views -----------------------------------------------------------------------------

    @property
    def n_groups(self) -> int:
        """Number of groups held."""
        return len(self.observations)

    def __len__(self) -> int:
        return self.n_groups * self.group_size

    @property
    def completions(self) -> CompletionBatch:
        """All completions, as one batch."""
        if self._completions is None:
            if not self._chunks:
                raise ValueError("the rollout buffer is empty; collect rollouts first")
            self._chunks = [CompletionBatch.concatenate(self._chunks)]
            self._completions = self._chunks[0]
        return self._completions

    @property
    def rewards(self) -> torch.Tensor:
        """``(n_groups, group_size)`` float64 rewards."""
        flat = np.concatenate(self._rewards) if self._rewards else np.zeros(0)
        return torch.as_tensor(flat).reshape(-1, self.group_size)

    @property
    def ref_log_probs(self) -> torch.Tensor | None:
        """``(rows, T)`` reference log-probs, or None if any chunk came without them."""
        return self._padded(self._ref)

    @property
    def step_advantages(self) -> torch.Tensor | None:
        """``(rows, T)`` the step-level terms, or None if any chunk came without them."""
        return self._padded(self._step)

    def _padded(self, chunks: list[torch.Tensor | None]) -> torch.Tensor | None:
        present = [r for r in chunks if r is not None]
        if not present or len(present) < len(chunks):
            return None
        width = self.completions.token_ids.shape[1]
        return torch.cat([torch.nn.functional.pad(r, (0, width - r.shape[1])) for r in present])

    def component_means(self) -> dict[str, float]:
        """Mean of each named reward component over the buffer."""
        return {k: float(np.concatenate(v).mean()) for k, v in self.reward_components.items()}

    def components(self, names: list[str]) -> torch.Tensor:
        """``(n_groups, group_size, len(names))`` float64: the named reward components."""
        return stack_components(
            {k: np.concatenate(v) for k, v in self.reward_components.items()}, names, self.group_size
        )

    # -- advantages and filtering ----------------------------------------------------------

    def compute_advantages(
        self,
        scale_rewards: ScaleRewards = "group",
        std_eps: float = DEFAULT_STD_EPS,
        advantage_clip: float | None = None,
        reward_threshold: float | None = None,
        baseline: RunningTaskBaseline | None = None,
        baseline_coef: float = 0.0,
        estimator: AdvantageEstimator = "grpo",
        aggregation: MultiObjectiveAggregation = "sum_then_normalize",
        component_weights: dict[str, float] | None = None,
    ) -> torch.Tensor:
        """Fill :attr:`advantages` (``(rows,)``) and :attr:`zero_std` (``(n_groups,)``).

        Parameters are those of :func:`grpo_agent.common.advantages.estimate_advantages`;
        ``baseline`` is read for these groups before being updated with their means. With
        ``aggregation="normalize_then_sum"`` the advantages come from the reward components and
        ``component_weights`` instead (:func:`~grpo_agent.common.multi_objective.normalize_then_sum_advantages`;
        ``advantage_clip`` still applies).
        """
        # In a data-parallel run every process computes the advantages of all groups, so that the
        # batch statistics (scale_rewards="batch", the REINFORCE++ std) are the whole batch's,
        # then keeps its own rows; group statistics are the same either way.
        rewards, mine = distributed.gather_rows(self.rewards)
        task_ids = distributed.gather_objects(self.task_ids)
        learned = baseline(task_ids) if baseline is not None else None
        if aggregation == "normalize_then_sum":
            if component_weights is None:
                raise ValueError("multi_objective_aggregation='normalize_then_sum' needs reward_weights")
            names = list(component_weights)
            components, _ = distributed.gather_rows(self.components(names))
            weights = torch.tensor([component_weights[k] for k in names], dtype=torch.float64)
            advantages, zero_std = normalize_then_sum_advantages(components, weights, std_eps)
            if advantage_clip is not None:
                if advantage_clip <= 0:
                    raise ValueError(f"advantage_clip must be > 0 (or None to disable), got {advantage_clip}")
                advantages = advantages.clamp(-advantage_clip, advantage_clip)
        else:
            advantages, zero_std = estimate_advantages(
                rewards, estimator, scale_rewards, std_eps, advantage_clip, reward_threshold, learned, baseline_coef
            )
        if baseline is not None:
            baseline.update(task_ids, rewards.mean(dim=1).tolist())
        self.zero_std = zero_std[mine]
        self.advantages = advantages[mine].reshape(-1)
        step = self.step_advantages
        self.token_advantages = None if step is None else self.advantages.unsqueeze(1).to(step) + step
        return self.advantages

    def group_zero_std(self) -> torch.Tensor:
        """``(n_groups,)`` True where all rewards of the group are equal (no relative signal)."""
        rewards = self.rewards
        return rewards.amax(dim=1) == rewards.amin(dim=1)

    def keep_groups(self, keep: torch.Tensor | Sequence[bool]) -> None:
        """Keep only the groups where ``keep`` is True (advantages must be recomputed after)."""
        keep_t = torch.as_tensor(keep, dtype=torch.bool)
        if keep_t.shape != (self.n_groups,):
            raise ValueError(f"keep must have one entry per group ({self.n_groups}), got shape {tuple(keep_t.shape)}")
        if bool(keep_t.all()):
            return
        groups = keep_t.nonzero().flatten().tolist()
        rows = [g * self.group_size + j for g in groups for j in range(self.group_size)]
        ref, step = self.ref_log_probs, self.step_advantages
        rewards = self.rewards.reshape(-1).numpy()[rows]
        components = {k: np.concatenate(v)[rows] for k, v in self.reward_components.items()}
        observations = [self.observations[g] for g in groups]
        task_ids = [self.task_ids[g] for g in groups]
        completions = self.completions.index(rows) if rows else None
        self.reset()
        if completions is not None:
            self.add(
                observations, task_ids, completions, rewards, None if ref is None else ref[rows], components,
                None if step is None else step[rows],
            )  # fmt: skip

    # -- minibatches -----------------------------------------------------------------------

    def get(
        self, batch_size: int | None = None, rng: np.random.Generator | None = None
    ) -> Iterator[GroupRolloutSamples]:
        """Minibatches of ``batch_size`` completions (all of them when None), shuffled with
        ``rng`` when given. The last minibatch may be smaller."""
        if self.advantages is None:
            raise ValueError("call compute_advantages() before get()")
        n = len(self)
        batch_size = n if batch_size is None else batch_size
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        order = rng.permutation(n) if rng is not None else np.arange(n)
        completions, ref = self.completions, self.ref_log_probs
        rewards = self.rewards.reshape(-1)
        advantages = self.advantages if self.token_advantages is None else self.token_advantages
        for start in range(0, n, batch_size):
            rows = torch.as_tensor(order[start : start + batch_size])
            yield GroupRolloutSamples(
                completions=completions.index(rows),
                advantages=advantages[rows].to(self.device),
                rewards=rewards[rows].to(self.device),
                ref_log_probs=None if ref is None else ref[rows].to(self.device),
            )


@dataclass
class RolloutSamples:
    """One minibatch drawn from a :class:`RolloutBuffer`; the tensors are ``(b, T)``.

    :param completions: the completions (with their old log-probs and mask).
    :param old_values: the critic's values at collection time.
    :param advantages: per-token advantages.
    :param returns: per-token returns (the value targets).
    """

    completions: CompletionBatch
    old_values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor


class RolloutBuffer:
    """One completion per prompt, with the per-token values, advantages and returns of a critic.

    Fill it with :meth:`add` once per rollout, then iterate minibatches with :meth:`get`.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Empty the buffer."""
        self._completions: CompletionBatch | None = None
        self.values: torch.Tensor | None = None
        self.advantages: torch.Tensor | None = None
        self.returns: torch.Tensor | None = None

    def add(
        self, completions: CompletionBatch, values: torch.Tensor, advantages: torch.Tensor, returns: torch.Tensor
    ) -> None:
        """Hold a rollout (replacing any previous one).

        :param completions: ``B`` completions whose ``token_ids`` are ``(B, T)``.
        :param values: ``(B, T)`` the critic's values at collection time.
        :param advantages: ``(B, T)`` per-token advantages.
        :param returns: ``(B, T)`` per-token returns.
        """
        shape = tuple(completions.token_ids.shape)
        for name, tensor in (("values", values), ("advantages", advantages), ("returns", returns)):
            if tuple(tensor.shape) != shape:
                raise ValueError(f"{name} must have the completions' shape {shape}, got {tuple(tensor.shape)}")
        self._completions, self.values, self.advantages, self.returns = completions, values, advantages, returns

    def __len__(self) -> int:
        return 0 if self._completions is None else len(self._completions)

    @property
    def completions(self) -> CompletionBatch:
        """The rollout's completions."""
        if self._completions is None:
            raise ValueError("the rollout buffer is empty; collect rollouts first")
        return self._completions

    def get(self, batch_size: int | None = None, rng: np.random.Generator | None = None) -> Iterator[RolloutSamples]:
        """Minibatches of ``batch_size`` completions (all of them when None), shuffled with
        ``rng`` when given. The last minibatch may be smaller."""
        completions = self.completions
        assert self.values is not None and self.advantages is not None and self.returns is not None
        n = len(completions)
        batch_size = n if batch_size is None else batch_size
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        order = rng.permutation(n) if rng is not None else np.arange(n)
        for start in range(0, n, batch_size):
            rows = torch.as_tensor(order[start : start + batch_size])
            on_device = rows.to(self.values.device)
            yield RolloutSamples(
                completions=completions.index(rows),
                old_values=self.values[on_device],
                advantages=self.advantages[on_device],
                returns=self.returns[on_device],
            )
