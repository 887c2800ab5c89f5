"""Group-relative advantages: each completion's reward against the rest of its group.

Inputs are ``(n_groups, G)`` rewards, one row per group of completions of one prompt. Every
estimator gives a group whose rewards are all equal an advantage of exactly 0 (it carries no
relative signal), bit for bit. :func:`estimate_advantages` selects one by verl's name:

- ``grpo`` (:func:`group_advantages`): ``(r_i - mean_g) / (std_g + eps)``; Shao et al. 2024,
  "DeepSeekMath" (arXiv:2402.03300). ``scale_rewards="none"`` is Dr. GRPO (Liu et al. 2025,
  arXiv:2503.20783); ``"batch"`` divides by the batch's reward std, as TRL does.
- ``rloo`` (:func:`rloo_advantages`): ``r_i - mean_{j != i} r_j``, a baseline that does not
  contain the sample it scores; Ahmadian et al. 2024, "Back to Basics" (arXiv:2402.14740).
- ``reinforce_plus_plus_baseline`` (:func:`reinforce_plus_plus_baseline_advantages`): the
  group mean as baseline, then whitened over the whole batch; Hu et al. 2025, "REINFORCE++"
  (arXiv:2501.03262), as verl computes it.
- ``grpo_passk`` (:func:`passk_advantages`): only each group's best completion gets an
  advantage, ``r_max - r_second``, so that the policy optimises pass@k rather than pass@1;
  Chen et al. 2025, "Pass@k Training" (arXiv:2503.19595), as verl computes it.
"""

from __future__ import annotations

from typing import Literal

import torch

from grpo_agent.common.utils import check_choice

ScaleRewards = Literal["group", "batch", "none"]
AdvantageEstimator = Literal["grpo", "rloo", "reinforce_plus_plus_baseline", "grpo_passk"]

#: Added to the reward std before dividing; TRL's GRPOTrainer uses the same 1e-4.
DEFAULT_STD_EPS = 1e-4


def group_advantages(
    rewards: torch.Tensor,
    scale_rewards: ScaleRewards = "group",
    std_eps: float = DEFAULT_STD_EPS,
    advantage_clip: float | None = None,
    reward_threshold: float | None = None,
    baseline: torch.Tensor | None = None,
    baseline_coef: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Group-relative advantages ``A_i = (r_i - b_g) / (std + std_eps)``.

    :param rewards: ``(n_groups, G)`` rewards, one row per group of completions of one prompt.
    :param scale_rewards: ``"group"`` divides by each group's std (GRPO); ``"batch"`` by the
        std of all rewards in the batch (REINFORCE++, TRL); ``"none"`` does not scale (Dr. GRPO).
        Std is the unbiased sample std, as in TRL.
    :param std_eps: added to the std so that a nearly constant group cannot blow up.
    :param advantage_clip: if set, advantages are clipped to ``[-advantage_clip, advantage_clip]``.
    :param reward_threshold: what a zero-std group (all rewards equal) learns from. By default
        such a group carries no relative signal and its advantage is exactly 0; with a threshold
        ``tau`` it gets the absolute advantage ``r - tau`` (unscaled), so an all-wrong group is
        pushed down and an all-right one up.
    :param baseline: ``(n_groups,)`` a learned per-prompt baseline (NaN where none is known).
    :param baseline_coef: the baseline is ``(1 - c) * group_mean + c * baseline`` where the
        learned one is known; 0 means the plain group mean.
    :return: ``(advantages (n_groups, G), zero_std (n_groups,) bool)``.
    """
    check_choice("scale_rewards", scale_rewards, ScaleRewards)
    if rewards.dim() != 2 or rewards.shape[1] < 2:
        raise ValueError(f"rewards must have shape (n_groups, G) with G >= 2, got {tuple(rewards.shape)}")
    if not 0.0 <= baseline_coef <= 1.0:
        raise ValueError(f"baseline_coef must be in [0, 1], got {baseline_coef}")
    # Equality of max and min, not std == 0: the mean of equal floats can differ from them by
    # one ulp, and "constant group -> exactly 0" must hold bit for bit.
    zero_std = rewards.amax(dim=1) == rewards.amin(dim=1)
    mean = rewards.mean(dim=1, keepdim=True)
    if baseline is not None and baseline_coef > 0:
        learned = baseline.to(rewards).reshape(-1, 1)
        mean = torch.where(torch.isnan(learned), mean, (1 - baseline_coef) * mean + baseline_coef * learned)
    centred = rewards - mean
    if scale_rewards == "group":
        advantages = centred / (rewards.std(dim=1, keepdim=True) + std_eps)
    elif scale_rewards == "batch":
        std = rewards.std() if rewards.numel() > 1 else rewards.new_zeros(())
        advantages = centred / (std + std_eps)
    else:
        advantages = centred
    constant = torch.zeros_like(rewards) if reward_threshold is None else rewards - reward_threshold
    advantages = torch.where(zero_std.unsqueeze(1), constant, advantages)
    if advantage_clip is not None:
        if advantage_clip <= 0:
            raise ValueError(f"advantage_clip must be > 0 (or None to disable), got {advantage_clip}")
        advantages = advantages.clamp(-advantage_clip, advantage_clip)
    return advantages, zero_std


def _check_groups(rewards: torch.Tensor) -> torch.Tensor:
    """Validate ``(n_groups, G)`` rewards; return which groups are constant (max == min, so
    that "constant group -> exactly 0" holds bit for bit whatever the mean's rounding)."""
    if rewards.dim() != 2 or rewards.shape[1] < 2:
        raise ValueError(f"rewards must have shape (n_groups, G) with G >= 2, got {tuple(rewards.shape)}")
    return rewards.amax(dim=1) == rewards.amin(dim=1)


def _scale(values: torch.Tensor, rewards: torch.Tensor, scale_rewards: ScaleRewards, std_eps: float) -> torch.Tensor:
    check_choice("scale_rewards", scale_rewards, ScaleRewards)
    if scale_rewards == "group":
        return values / (rewards.std(dim=1, keepdim=True) + std_eps)
    if scale_rewards == "batch":
        return values / ((rewards.std() if rewards.numel() > 1 else rewards.new_zeros(())) + std_eps)
    return values


def rloo_advantages(
    rewards: torch.Tensor, scale_rewards: ScaleRewards = "none", std_eps: float = DEFAULT_STD_EPS
) -> torch.Tensor:
    """REINFORCE leave-one-out: ``A_i = r_i - (sum_g - r_i) / (G - 1)``, then optionally scaled
    like :func:`group_advantages` (RLOO itself does not scale: ``"none"``).

    It equals ``G / (G - 1)`` times the group-mean advantage, without the ``(G - 1) / G``
    shrinkage a baseline containing the scored sample has.

    :return: ``(n_groups, G)`` advantages.
    """
    zero_std = _check_groups(rewards)
    g = rewards.shape[1]
    others = (rewards.sum(dim=1, keepdim=True) - rewards) / (g - 1)
    advantages = _scale(rewards - others, rewards, scale_rewards, std_eps)
    return torch.where(zero_std.unsqueeze(1), torch.zeros_like(advantages), advantages)


def reinforce_plus_plus_baseline_advantages(rewards: torch.Tensor, std_eps: float = DEFAULT_STD_EPS) -> torch.Tensor:
    """REINFORCE++ with a group baseline: ``c_i = r_i - mean_g``, then ``c_i / (std(c) + eps)``
    with the std taken over every completion of the batch.

    Whitening would also subtract the batch mean of ``c``; it is 0 by construction (each group
    sums to zero), so it is left out and constant groups keep an advantage of exactly 0.

    :return: ``(n_groups, G)`` advantages.
    """
    zero_std = _check_groups(rewards)
    centred = torch.where(zero_std.unsqueeze(1), torch.zeros_like(rewards), rewards - rewards.mean(dim=1, keepdim=True))
    std = centred.std() if centred.numel() > 1 else centred.new_zeros(())
    return centred / (std + std_eps)


def passk_advantages(
    rewards: torch.Tensor, scale_rewards: ScaleRewards = "group", std_eps: float = DEFAULT_STD_EPS
) -> torch.Tensor:
    """Pass@k advantages: in each group only the best completion (the first one on ties) gets
    ``r_max - r_second``, scaled like :func:`group_advantages`; every other completion gets 0.

    With 0/1 rewards a group with exactly one correct completion pushes that one up; a group
    with two or more correct completions (pass@k already reached) gives no signal.

    :return: ``(n_groups, G)`` advantages.
    """
    _check_groups(rewards)
    top = rewards.topk(2, dim=1)
    gap = (top.values[:, :1] - top.values[:, 1:2]).expand_as(rewards)
    best = torch.zeros_like(rewards, dtype=torch.bool).scatter(1, top.indices[:, :1], True)
    return torch.where(best, _scale(gap, rewards, scale_rewards, std_eps), torch.zeros_like(rewards))


def estimate_advantages(
    rewards: torch.Tensor,
    estimator: AdvantageEstimator = "grpo",
    scale_rewards: ScaleRewards = "group",
    std_eps: float = DEFAULT_STD_EPS,
    advantage_clip: float | None = None,
    reward_threshold: float | None = None,
    baseline: torch.Tensor | None = None,
    baseline_coef: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages by the named estimator (verl's ``algorithm.adv_estimator`` names).

    :param estimator: ``"grpo"``, ``"rloo"``, ``"reinforce_plus_plus_baseline"`` or ``"grpo_passk"``
        (see the module docstring).
    :param scale_rewards: for ``grpo``, ``rloo`` and ``grpo_passk``; ``reinforce_plus_plus_baseline``
        always divides by the batch std and accepts only the default ``"group"``.
    :param reward_threshold: ``grpo`` only (see :func:`group_advantages`).
    :param baseline: ``grpo`` only, with ``baseline_coef`` (see :func:`group_advantages`).
    :return: ``(advantages (n_groups, G), zero_std (n_groups,) bool)``.
    """
    check_choice("advantage_estimator", estimator, AdvantageEstimator)
    if estimator == "grpo":
        return group_advantages(
            rewards, scale_rewards, std_eps, advantage_clip, reward_threshold, baseline, baseline_coef
        )
    if reward_threshold is not None or (baseline is not None and baseline_coef > 0):
        raise ValueError(
            f"reward_threshold and a learned baseline apply to advantage_estimator='grpo' only, not {estimator!r}"
        )
    zero_std = _check_groups(rewards)
    if estimator == "rloo":
        advantages = rloo_advantages(rewards, scale_rewards, std_eps)
    elif estimator == "grpo_passk":
        advantages = passk_advantages(rewards, scale_rewards, std_eps)
    else:
        if scale_rewards != "group":
            raise ValueError(
                "advantage_estimator='reinforce_plus_plus_baseline' always scales by the batch std; "
                f"leave scale_rewards at its default, not {scale_rewards!r}"
            )
        advantages = reinforce_plus_plus_baseline_advantages(rewards, std_eps)
    if advantage_clip is not None:
        if advantage_clip <= 0:
            raise ValueError(f"advantage_clip must be > 0 (or None to disable), got {advantage_clip}")
        advantages = advantages.clamp(-advantage_clip, advantage_clip)
    return advantages, zero_std
