"""Several reward components: how they become one advantage, and weights that adapt.

An env that explains its reward as named components (``info["reward_components"]``, e.g.
correctness and format) gets one weight per component (``reward_weights``, TRL's name). The
components meet the group statistics in one of two orders (TRL's ``multi_objective_aggregation``):

- ``"sum_then_normalize"`` (GRPO, TRL's default): ``r = sum_k w_k c_k``, then the group-relative
  advantage of ``r`` (:func:`~grpo_agent.common.advantages.group_advantages`). A component with a
  large spread dominates the advantage whatever its weight says.
- ``"normalize_then_sum"`` (:func:`normalize_then_sum_advantages`): each component is normalised
  within its group first, the weighted sum is then divided by its batch std. A group where one
  component varies and another does not still learns from the first one at its weight's share;
  GDPO, "Group reward-Decoupled Normalization Policy Optimization for Multi-reward RL
  Optimization" (arXiv:2601.05242), as TRL computes it.

The design asks for weights that "can be adjusted adaptively". :class:`VarianceShareWeights` keeps
each component's share of the advantage variance (:func:`variance_shares`) near a target: a
component that the policy games (its spread grows, so it drowns the others) loses weight, one
whose signal fades gains it. The rule is in the class docstring.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

import numpy as np
import torch

from grpo_agent.common.advantages import DEFAULT_STD_EPS
from grpo_agent.common.utils import check_choice

MultiObjectiveAggregation = Literal["sum_then_normalize", "normalize_then_sum"]


def _check_components(components: torch.Tensor) -> None:
    if components.dim() != 3 or components.shape[1] < 2 or components.shape[2] < 1:
        raise ValueError(
            f"components must have shape (n_groups, G, K) with G >= 2 and K >= 1, got {tuple(components.shape)}"
        )


def component_terms(
    components: torch.Tensor,
    weights: torch.Tensor,
    aggregation: MultiObjectiveAggregation = "sum_then_normalize",
    std_eps: float = DEFAULT_STD_EPS,
) -> torch.Tensor:
    """Each component's weighted term of the advantage, before the scaling all terms share.

    ``sum_then_normalize``: ``w_k (c_k - mean_g c_k)``; ``normalize_then_sum``:
    ``w_k (c_k - mean_g c_k) / (std_g c_k + std_eps)``. A component constant in a group has a
    term of exactly 0 there. Summed over ``k`` they are the advantage up to one common factor.

    :param components: ``(n_groups, G, K)`` component values, one row per group.
    :param weights: ``(K,)`` the components' weights.
    :param aggregation: see the module docstring.
    :param std_eps: added to each component's group std (``normalize_then_sum``).
    :return: ``(n_groups, G, K)``.
    """
    check_choice("multi_objective_aggregation", aggregation, MultiObjectiveAggregation)
    _check_components(components)
    constant = components.amax(dim=1, keepdim=True) == components.amin(dim=1, keepdim=True)
    centred = components - components.mean(dim=1, keepdim=True)
    if aggregation == "normalize_then_sum":
        centred = centred / (components.std(dim=1, keepdim=True) + std_eps)
    # A constant component is exactly 0, whatever the rounding of its mean.
    return torch.where(constant, torch.zeros_like(centred), centred) * weights.to(components)


def normalize_then_sum_advantages(
    components: torch.Tensor, weights: torch.Tensor, std_eps: float = DEFAULT_STD_EPS
) -> tuple[torch.Tensor, torch.Tensor]:
    """GDPO's advantages: per-component group normalisation, weighted sum, batch std.

    ``A = s / (std_batch(s) + std_eps)`` with ``s = sum_k w_k (c_k - mean_g c_k) / (std_g c_k + std_eps)``.
    TRL also subtracts the batch mean of ``s``; it is 0 by construction (each group's ``s`` sums
    to zero), so it is left out and a group where every component is constant keeps exactly 0.

    :param components: ``(n_groups, G, K)``.
    :param weights: ``(K,)``.
    :return: ``(advantages (n_groups, G), zero_std (n_groups,) bool)``: a group is zero-std when
        every one of its components is constant.
    """
    terms = component_terms(components, weights, "normalize_then_sum", std_eps)
    summed = terms.sum(dim=2)
    zero_std = (components.amax(dim=1) == components.amin(dim=1)).all(dim=1)
    std = summed.std() if summed.numel() > 1 else summed.new_zeros(())
    return summed / (std + std_eps), zero_std


def variance_shares(terms: torch.Tensor) -> torch.Tensor:
    """Each component's share of the advantage variance: ``sum(t_k^2) / sum_j sum(t_j^2)``.

    This is the diagonal of the variance decomposition (covariances between components are left
    out, so every share is in ``[0, 1]`` and they sum to 1); all zeros when every term is 0.

    :param terms: ``(..., K)`` the components' terms (:func:`component_terms`).
    :return: ``(K,)`` float64.
    """
    energy = terms.to(torch.float64).pow(2).reshape(-1, terms.shape[-1]).sum(dim=0)
    total = energy.sum()
    return energy / total if total > 0 else torch.zeros_like(energy)


class VarianceShareWeights:
    """Reward-component weights that keep each component's share of the advantage variance near a target.

    After each rollout, with the weights ``w`` it was scored with: ``v_k = sum((term_k / w_k)^2)``
    (the component's own, unweighted energy, :func:`component_terms`); the weights that give
    exactly the target shares ``p_k`` on this rollout are ``w*_k ∝ sqrt(p_k / v_k)`` (a share is
    ``w_k^2 v_k / sum_j w_j^2 v_j``). The weights move geometrically towards them,
    ``log w_k += rate * (log w*_k - log w_k)``, scaled so that the weights' total stays the
    initial total (the reward keeps its scale). ``rate=1`` reaches the targets on the rollout
    just measured; smaller rates average over rollouts. A component with no spread in the
    rollout (``v_k = 0``) keeps its weight, and the others share the rest of the targets.

    :param weights: initial weight per component (positive).
    :param targets: target share per component, positive and summing to 1.
    :param rate: step size in ``(0, 1]``.
    :param min_weight: lower bound of every weight, a fraction of the initial total (a component
        is never silenced for good, so its share can still be measured).
    """

    def __init__(
        self, weights: Mapping[str, float], targets: Mapping[str, float], rate: float = 0.5, min_weight: float = 1e-3
    ) -> None:
        if set(weights) != set(targets):
            raise ValueError(
                f"reward_weight_targets must name the same components as reward_weights: "
                f"{sorted(targets)} vs {sorted(weights)}"
            )
        if any(w <= 0 for w in weights.values()) or any(p <= 0 for p in targets.values()):
            raise ValueError(
                "adaptive reward weights need positive initial weights and positive targets, "
                f"got {dict(weights)} and {dict(targets)}"
            )
        if not math.isclose(sum(targets.values()), 1.0, abs_tol=1e-6):
            raise ValueError(f"reward_weight_targets must sum to 1 (they are shares), got {sum(targets.values())}")
        if not 0 < rate <= 1:
            raise ValueError(f"reward_weight_rate must be in (0, 1], got {rate}")
        self.names = list(weights)
        self.weights = {k: float(weights[k]) for k in self.names}
        self.targets = {k: float(targets[k]) for k in self.names}
        self.rate, self.total = rate, sum(self.weights.values())
        self.min_weight = min_weight * self.total
        #: The shares measured on the last rollout (with the weights it was scored with).
        self.last_shares: dict[str, float] = {}

    def update(self, terms: torch.Tensor) -> dict[str, float]:
        """Measure the shares of a rollout scored with the current weights, then move the weights.

        :param terms: ``(..., K)`` the rollout's component terms (:func:`component_terms`) with
            the current weights, components in :attr:`names` order.
        :return: the measured shares, by name.
        """
        w = torch.tensor([self.weights[k] for k in self.names], dtype=torch.float64)
        if terms.shape[-1] != len(w):
            raise ValueError(f"terms have {terms.shape[-1]} components, the weights {len(w)}")
        shares = variance_shares(terms)
        self.last_shares = dict(zip(self.names, shares.tolist()))
        energy = terms.to(torch.float64).pow(2).reshape(-1, len(w)).sum(dim=0) / w.pow(2)
        active = energy > 0
        if not bool(active.any()):
            return self.last_shares
        p = torch.tensor([self.targets[k] for k in self.names], dtype=torch.float64)
        ideal = torch.where(active, (p / energy.clamp_min(1e-300)).sqrt(), w)
        # Scale the ideal weights of the active components to the active components' current total.
        ideal = torch.where(active, ideal * w[active].sum() / ideal[active].sum(), w)
        moved = torch.exp(torch.log(w) + self.rate * (torch.log(ideal) - torch.log(w)))
        moved = torch.where(active, moved * w[active].sum() / moved[active].sum(), w)
        moved = moved.clamp_min(self.min_weight)
        moved = moved * self.total / moved.sum()
        self.weights = dict(zip(self.names, moved.tolist()))
        return self.last_shares


def stack_components(components: Mapping[str, np.ndarray], names: list[str], group_size: int) -> torch.Tensor:
    """``(n_groups, G, K)`` float64 from per-completion component arrays, in ``names`` order.

    :raises ValueError: when a named component is missing.
    """
    missing = [k for k in names if k not in components]
    if missing:
        raise ValueError(f"the rollout has no reward component(s) {missing}; the env reported {sorted(components)}")
    stacked = np.stack([np.asarray(components[k], dtype=np.float64) for k in names], axis=-1)
    return torch.as_tensor(stacked).reshape(-1, group_size, len(names))
