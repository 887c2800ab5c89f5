"""The GRPO objective: the clipped surrogate plus a KL penalty, aggregated per ``loss_type``.

Pure tensor functions (see :mod:`grpo_agent.common.losses` for the per-token terms it shares
with PPO, and :mod:`grpo_agent.common.advantages` for the group-relative advantages; both are
re-exported here, where earlier versions defined them).

References:

- GRPO: Shao et al. 2024, "DeepSeekMath" (arXiv:2402.03300), per-token KL with the k3 estimator.
- Token-level loss (dapo): Yu et al. 2025, "DAPO" (arXiv:2503.14476).
- dr_grpo: Liu et al. 2025, "Understanding R1-Zero-Like Training" (arXiv:2503.20783).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from grpo_agent.common.advantages import DEFAULT_STD_EPS, ScaleRewards, group_advantages
from grpo_agent.common.losses import (
    ImportanceSamplingLevel,
    KLEstimator,
    cispo_surrogate,
    clipped_surrogate,
    importance_log_ratio,
    kl_penalty,
    masked_mean,
    surrogate_from_ratio,
)
from grpo_agent.common.utils import check_choice

LossType = Literal["grpo", "bnpo", "dr_grpo", "dapo"]
PolicyLoss = Literal["clip", "cispo"]

__all__ = [
    "DEFAULT_STD_EPS",
    "GRPOLossOutput",
    "KLEstimator",
    "LossType",
    "PolicyLoss",
    "ScaleRewards",
    "aggregate_loss",
    "clipped_surrogate",
    "group_advantages",
    "grpo_loss",
    "kl_penalty",
    "masked_mean",
]


def aggregate_loss(
    per_token_loss: torch.Tensor,
    mask: torch.Tensor,
    loss_type: LossType = "grpo",
    max_completion_length: int | None = None,
    num_tokens: float | None = None,
) -> torch.Tensor:
    """Reduce a ``(B, T)`` per-token loss to a scalar, counting only masked-in tokens.

    - ``grpo``: mean over each sequence's tokens, then mean over sequences (long answers'
      tokens weigh less: the length bias Dr. GRPO points out).
    - ``bnpo``: sum over all tokens / number of tokens in *this* minibatch.
    - ``dapo``: sum over all tokens / ``num_tokens``, the token count the whole rollout
      assigns to a minibatch of this size (``rollout_tokens * B / rollout_size``); every token
      of the rollout then weighs the same whichever minibatch it lands in. Without
      ``num_tokens`` it equals ``bnpo``.
    - ``dr_grpo``: sum over all tokens / ``(B * max_completion_length)``, a constant.

    :param per_token_loss: ``(B, T)``.
    :param mask: ``(B, T)`` bool; False positions contribute nothing (their values may be
        anything finite; :func:`grpo_loss` also neutralises non-finite ones).
    :param loss_type: one of grpo, bnpo, dr_grpo, dapo.
    :param max_completion_length: required by ``dr_grpo``.
    :param num_tokens: ``dapo``'s normaliser.
    """
    check_choice("loss_type", loss_type, LossType)
    m = mask.to(per_token_loss.dtype)
    total = per_token_loss * m
    if loss_type == "grpo":
        return (total.sum(dim=1) / m.sum(dim=1).clamp(min=1)).mean()
    if loss_type == "bnpo" or (loss_type == "dapo" and num_tokens is None):
        return total.sum() / m.sum().clamp(min=1)
    if loss_type == "dapo":
        return total.sum() / max(float(num_tokens), 1.0)  # type: ignore[arg-type]
    if max_completion_length is None or max_completion_length < 1:
        raise ValueError("loss_type='dr_grpo' needs max_completion_length >= 1 (the policy's attribute)")
    return total.sum() / (per_token_loss.shape[0] * max_completion_length)


# -- the whole loss -----------------------------------------------------------------------


@dataclass
class GRPOLossOutput:
    """The loss to minimise and the statistics logged with it (all but ``loss`` detached).

    :param loss: ``policy_loss + beta * KL``, aggregated per ``loss_type``.
    :param policy_loss: the clipped-surrogate part alone.
    :param kl: masked mean per-token KL to the reference (NaN when no reference was given).
    :param clip_fraction_low: fraction of tokens with ``A < 0`` and ``rho < 1 - eps_low``.
    :param clip_fraction_high: fraction of tokens with ``A > 0`` and ``rho > 1 + eps_high``.
    :param approx_kl: k3 estimate of ``KL(pi_old || pi)``, as in stable-baselines3's PPO.
    :param ratio_mean: masked mean importance ratio.
    """

    loss: torch.Tensor
    policy_loss: torch.Tensor
    kl: torch.Tensor
    clip_fraction_low: torch.Tensor
    clip_fraction_high: torch.Tensor
    approx_kl: torch.Tensor
    ratio_mean: torch.Tensor


def grpo_loss(
    log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    ref_log_probs: torch.Tensor | None = None,
    beta: float = 0.0,
    clip_range: float = 0.2,
    clip_range_high: float | None = None,
    kl_estimator: KLEstimator = "k3",
    loss_type: LossType = "grpo",
    max_completion_length: int | None = None,
    num_tokens: float | None = None,
    *,
    policy_loss: PolicyLoss = "clip",
    importance_sampling_level: ImportanceSamplingLevel = "token",
    dual_clip: float | None = None,
    entropy: torch.Tensor | None = None,
    entropy_coef: float = 0.0,
    trained_mask: torch.Tensor | None = None,
    is_weights: torch.Tensor | None = None,
) -> GRPOLossOutput:
    """The GRPO objective on one minibatch of completions.

    ``loss = agg(-min(rho * A, clip(rho) * A) + beta * KL(pi || pi_ref) - entropy_coef * H)``
    with per-token ``rho = exp(log pi - log pi_old)``; see :func:`clipped_surrogate`,
    :func:`kl_penalty` and :func:`aggregate_loss` for each part and its parameters.
    ``ref_log_probs`` is required when ``beta != 0``, ``entropy`` when ``entropy_coef != 0``.

    :param policy_loss: ``"clip"`` (PPO's clipped surrogate, optionally dual-clipped) or
        ``"cispo"`` (:func:`~grpo_agent.common.losses.cispo_surrogate`; TRL's ``loss_type="cispo"``
        is ``policy_loss="cispo"`` with ``loss_type="dapo"``).
    :param importance_sampling_level: ``"token"``, ``"sequence"`` (GSPO) or ``"sequence_token"``
        (GSPO-token); see :func:`~grpo_agent.common.losses.importance_log_ratio`.
    :param dual_clip: lower bound ``c`` of the loss for negative advantages (None: off).
    :param entropy: ``(B, T)`` per-token entropy of the current policy, with gradient.
    :param entropy_coef: weight of the entropy bonus (0: none).
    :param trained_mask: ``(B, T)`` the tokens whose policy term is trained (e.g. the
        high-entropy ones, :func:`~grpo_agent.common.losses.high_entropy_mask`); the others keep
        their KL and entropy terms and still count in the aggregation's normaliser, as in TRL.
        None trains every token of ``mask``.
    :param is_weights: ``(B, T)`` off-policy correction weights of a rollout engine whose
        log-probs differ from the trainer's (:func:`~grpo_agent.common.rollout_correction.correction_weights`);
        they multiply each token's policy term, not its KL or entropy term, as in TRL. None: no correction.
    """
    check_choice("policy_loss", policy_loss, PolicyLoss)
    mask = mask.bool()
    if beta != 0 and ref_log_probs is None:
        raise ValueError("beta != 0 needs ref_log_probs (the reference policy's per-token log-probs)")
    if entropy_coef != 0 and entropy is None:
        raise ValueError("entropy_coef != 0 needs entropy (the policy's per-token entropy, with gradient)")
    # Padded positions may hold anything (even inf); zero them before any arithmetic so that
    # neither the value nor the gradient (0 * inf = nan) can leak from them.
    zero = torch.zeros((), dtype=log_probs.dtype, device=log_probs.device)
    log_probs = torch.where(mask, log_probs, zero)
    old_log_probs = torch.where(mask, old_log_probs, zero)
    ratio = torch.exp(importance_log_ratio(log_probs, old_log_probs, mask, importance_sampling_level))
    if policy_loss == "cispo":
        per_token = cispo_surrogate(
            log_probs, ratio, advantages, clip_range if clip_range_high is None else clip_range_high
        )
    else:
        per_token = surrogate_from_ratio(ratio, advantages, clip_range, clip_range_high, dual_clip)
    if trained_mask is not None:
        per_token = torch.where(trained_mask.bool() & mask, per_token, torch.zeros_like(per_token))
    if is_weights is not None:
        per_token = per_token * torch.where(mask, is_weights.to(per_token.dtype), zero)
    policy_part = aggregate_loss(per_token, mask, loss_type, max_completion_length, num_tokens)
    kl_stat = torch.tensor(float("nan"))
    if ref_log_probs is not None:
        ref_log_probs = torch.where(mask, ref_log_probs, zero)
        kl = kl_penalty(log_probs, ref_log_probs, kl_estimator)
        kl_stat = masked_mean(kl.detach(), mask)
        if beta != 0:
            per_token = per_token + beta * kl
    if entropy_coef != 0 and entropy is not None:
        per_token = per_token - entropy_coef * torch.where(mask, entropy, zero)
    loss = aggregate_loss(per_token, mask, loss_type, max_completion_length, num_tokens)

    with torch.no_grad():
        adv = advantages.unsqueeze(1) if advantages.dim() == 1 else advantages
        eps_high = clip_range if clip_range_high is None else clip_range_high
        low = (ratio < 1 - clip_range) & (adv < 0)
        high = (ratio > 1 + eps_high) & (adv > 0)
        log_ratio = log_probs - old_log_probs
        return GRPOLossOutput(
            loss=loss,
            policy_loss=policy_part.detach(),
            kl=kl_stat,
            clip_fraction_low=masked_mean(low.to(ratio.dtype), mask),
            clip_fraction_high=masked_mean(high.to(ratio.dtype), mask),
            approx_kl=masked_mean(torch.exp(log_ratio) - 1 - log_ratio, mask),
            ratio_mean=masked_mean(ratio, mask),
        )
