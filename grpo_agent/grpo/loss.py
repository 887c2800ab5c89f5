"""The GRPO loss as pure tensor functions: advantages, clipped surrogate, KL, aggregation.

Nothing here knows about policies or environments: inputs are ``(n_groups, G)`` rewards or
``(B, T)`` per-token log-probs with a ``(B, T)`` mask, so every formula is testable in
isolation and the same code trains a tabular policy (``T = 1``) and a language model.

References:

- GRPO: Shao et al. 2024, "DeepSeekMath" (arXiv:2402.03300), group-normalised advantage and
  per-token KL with the k3 estimator.
- k1/k2/k3 KL estimators: J. Schulman, "Approximating KL divergence" (2020 blog post).
- Clipped surrogate: Schulman et al. 2017, "Proximal Policy Optimization" (arXiv:1707.06347).
- Asymmetric clipping (clip-higher), token-level loss (dapo): Yu et al. 2025, "DAPO"
  (arXiv:2503.14476).
- dr_grpo and ``scale_rewards="none"``: Liu et al. 2025, "Understanding R1-Zero-Like Training"
  (arXiv:2503.20783).
- ``scale_rewards="batch"``: Hu et al. 2025, "REINFORCE++" (arXiv:2501.03262), as in TRL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch

ScaleRewards = Literal["group", "batch", "none"]
LossType = Literal["grpo", "bnpo", "dr_grpo", "dapo"]
KLEstimator = Literal["k1", "k2", "k3"]

#: Added to the reward std before dividing; TRL's GRPOTrainer uses the same 1e-4.
DEFAULT_STD_EPS = 1e-4


def _check_choice(name: str, value: str, literal: object) -> None:
    choices = get_args(literal)
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not supported; choose one of {', '.join(choices)}")


# -- advantages ---------------------------------------------------------------------------


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
    _check_choice("scale_rewards", scale_rewards, ScaleRewards)
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


# -- per-token terms ----------------------------------------------------------------------


def kl_penalty(log_probs: torch.Tensor, ref_log_probs: torch.Tensor, estimator: KLEstimator = "k3") -> torch.Tensor:
    """Per-token estimate of ``KL(pi || pi_ref)`` from tokens sampled from ``pi``.

    With ``x = log pi_ref - log pi``: ``k1 = -x`` (unbiased, can be negative),
    ``k2 = x^2 / 2`` (biased, low variance), ``k3 = exp(x) - x - 1`` (unbiased, always >= 0;
    GRPO's choice).
    """
    _check_choice("kl_estimator", estimator, KLEstimator)
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


# -- aggregation --------------------------------------------------------------------------


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over positions where ``mask`` is True (0 when there are none)."""
    m = mask.to(values.dtype)
    return (values * m).sum() / m.sum().clamp(min=1)


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
    _check_choice("loss_type", loss_type, LossType)
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
) -> GRPOLossOutput:
    """The GRPO objective on one minibatch of completions.

    ``loss = agg(-min(rho * A, clip(rho) * A) + beta * KL(pi || pi_ref))`` with per-token
    ``rho = exp(log pi - log pi_old)``; see :func:`clipped_surrogate`, :func:`kl_penalty` and
    :func:`aggregate_loss` for each part and its parameters. ``ref_log_probs`` is required
    when ``beta != 0``.
    """
    mask = mask.bool()
    if beta != 0 and ref_log_probs is None:
        raise ValueError("beta != 0 needs ref_log_probs (the reference policy's per-token log-probs)")
    # Padded positions may hold anything (even inf); zero them before any arithmetic so that
    # neither the value nor the gradient (0 * inf = nan) can leak from them.
    zero = torch.zeros((), dtype=log_probs.dtype, device=log_probs.device)
    log_probs = torch.where(mask, log_probs, zero)
    old_log_probs = torch.where(mask, old_log_probs, zero)
    per_token, ratio = clipped_surrogate(log_probs, old_log_probs, advantages, clip_range, clip_range_high)
    policy_loss = aggregate_loss(per_token, mask, loss_type, max_completion_length, num_tokens)
    kl_stat = torch.tensor(float("nan"))
    if ref_log_probs is not None:
        ref_log_probs = torch.where(mask, ref_log_probs, zero)
        kl = kl_penalty(log_probs, ref_log_probs, kl_estimator)
        kl_stat = masked_mean(kl.detach(), mask)
        if beta != 0:
            per_token = per_token + beta * kl
    loss = aggregate_loss(per_token, mask, loss_type, max_completion_length, num_tokens)

    with torch.no_grad():
        adv = advantages.unsqueeze(1) if advantages.dim() == 1 else advantages
        eps_high = clip_range if clip_range_high is None else clip_range_high
        low = (ratio < 1 - clip_range) & (adv < 0)
        high = (ratio > 1 + eps_high) & (adv > 0)
        log_ratio = log_probs - old_log_probs
        return GRPOLossOutput(
            loss=loss,
            policy_loss=policy_loss.detach(),
            kl=kl_stat,
            clip_fraction_low=masked_mean(low.to(ratio.dtype), mask),
            clip_fraction_high=masked_mean(high.to(ratio.dtype), mask),
            approx_kl=masked_mean(torch.exp(log_ratio) - 1 - log_ratio, mask),
            ratio_mean=masked_mean(ratio, mask),
        )
