"""Group-relative advantages: each completion's reward against its group's (GRPO, Dr. GRPO, REINFORCE++).

Inputs are ``(n_groups, G)`` rewards, one row per group of completions of one prompt.

References:

- GRPO: Shao et al. 2024, "DeepSeekMath" (arXiv:2402.03300), group-normalised advantage.
- ``scale_rewards="none"``: Liu et al. 2025, "Understanding R1-Zero-Like Training" (arXiv:2503.20783).
- ``scale_rewards="batch"``: Hu et al. 2025, "REINFORCE++" (arXiv:2501.03262), as in TRL.
"""

from __future__ import annotations

from typing import Literal

import torch

from grpo_agent.common.utils import check_choice

ScaleRewards = Literal["group", "batch", "none"]

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
