"""Per-token policy-gradient terms both algorithms use: the clipped surrogate, KL estimators, masked means.

Pure tensor functions over ``(B, T)`` per-token log-probs and a ``(B, T)`` mask: nothing here
knows about policies or environments, so every formula is testable alone and the same code
trains a tabular policy (``T = 1``) and a language model.

References:

- Clipped surrogate: Schulman et al. 2017, "Proximal Policy Optimization" (arXiv:1707.06347).
- Asymmetric clipping (clip-higher): Yu et al. 2025, "DAPO" (arXiv:2503.14476).
- k1/k2/k3 KL estimators: J. Schulman, "Approximating KL divergence" (2020 blog post).
"""

from __future__ import annotations

from typing import Literal

import torch

from grpo_agent.common.utils import check_choice

KLEstimator = Literal["k1", "k2", "k3"]


def kl_penalty(log_probs: torch.Tensor, ref_log_probs: torch.Tensor, estimator: KLEstimator = "k3") -> torch.Tensor:
    """Per-token estimate of ``KL(pi || pi_ref)`` from tokens sampled from ``pi``.

    With ``x = log pi_ref - log pi``: ``k1 = -x`` (unbiased, can be negative),
    ``k2 = x^2 / 2`` (biased, low variance), ``k3 = exp(x) - x - 1`` (unbiased, always >= 0;
    GRPO's choice).
    """
    check_choice("kl_estimator", estimator, KLEstimator)
    log_ratio = ref_log_probs - log_probs
    if estimator == "k1":
        return -log_ratio
    if estimator == "k2":
        return 0.5 * log_ratio**2
    return torch.exp(log_ratio) - log_ratio - 1


def clipped_surrogate(
    log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    clip_range: float = 0.2,
    clip_range_high: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token PPO loss ``-min(rho * A, clip(rho, 1 - eps_low, 1 + eps_high) * A)``.

    :param log_probs: ``(B, T)`` current log-probs (with grad).
    :param old_log_probs: ``(B, T)`` log-probs of the policy that sampled the tokens.
    :param advantages: ``(B,)`` one advantage per sequence (broadcast over its tokens) or ``(B, T)``.
    :param clip_range: ``eps_low`` (TRL's ``epsilon``).
    :param clip_range_high: ``eps_high`` (TRL's ``epsilon_high``); None means ``clip_range``.
    :return: ``(per_token_loss, ratio)``, both ``(B, T)``.
    """
    eps_low = clip_range
    eps_high = clip_range if clip_range_high is None else clip_range_high
    if eps_low < 0 or eps_high < 0:
        raise ValueError(f"clip ranges must be >= 0, got clip_range={eps_low}, clip_range_high={eps_high}")
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(1)
    ratio = torch.exp(log_probs - old_log_probs)
    clipped = torch.clamp(ratio, 1 - eps_low, 1 + eps_high)
    return -torch.min(ratio * advantages, clipped * advantages), ratio


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over positions where ``mask`` is True (0 when there are none)."""
    m = mask.to(values.dtype)
    return (values * m).sum() / m.sum().clamp(min=1)
