"""Per-token policy-gradient terms: importance ratios, the clipped surrogate and its variants, KL, entropy.

Pure tensor functions over ``(B, T)`` per-token log-probs and a ``(B, T)`` mask: nothing here
knows about policies or environments, so every formula is testable alone and the same code
trains a tabular policy (``T = 1``) and a language model.

References:

- Clipped surrogate: Schulman et al. 2017, "Proximal Policy Optimization" (arXiv:1707.06347).
- Asymmetric clipping (clip-higher): Yu et al. 2025, "DAPO" (arXiv:2503.14476).
- Dual-clip: Ye et al. 2020, "Mastering Complex Control in MOBA Games with Deep RL"
  (arXiv:1912.09729); verl's ``clip_ratio_c``, OpenRLHF's ``dual_clip``.
- Sequence-level ratio: Zheng et al. 2025, "Group Sequence Policy Optimization"
  (arXiv:2507.18071); TRL's ``importance_sampling_level="sequence"``.
- CISPO: MiniMax 2025, "MiniMax-M1" (arXiv:2506.13585), clipped stop-gradient IS weights.
- High-entropy tokens: Wang et al. 2025, "Beyond the 80/20 Rule" (arXiv:2506.01939); TRL's
  ``top_entropy_quantile``.
- k1/k2/k3 KL estimators: J. Schulman, "Approximating KL divergence" (2020 blog post).
"""

from __future__ import annotations

from typing import Literal

import torch

from grpo_agent.common.utils import check_choice

KLEstimator = Literal["k1", "k2", "k3"]
ImportanceSamplingLevel = Literal["token", "sequence", "sequence_token"]


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


def importance_log_ratio(
    log_probs: torch.Tensor, old_log_probs: torch.Tensor, mask: torch.Tensor, level: ImportanceSamplingLevel = "token"
) -> torch.Tensor:
    """``(B, T)`` log importance ratios ``log rho`` at the chosen level.

    - ``token`` (PPO, GRPO): ``log pi(y_t) - log pi_old(y_t)``.
    - ``sequence`` (GSPO): the mean over the sequence's masked-in tokens, i.e. the log of the
      length-normalised sequence ratio ``(pi(y) / pi_old(y)) ** (1 / |y|)``, the same at every token.
    - ``sequence_token`` (GSPO-token): the sequence ratio's value at every token, with each
      token's own gradient: ``sg[log s] + log pi(y_t) - sg[log pi(y_t)]``.
    """
    check_choice("importance_sampling_level", level, ImportanceSamplingLevel)
    log_ratio = log_probs - old_log_probs
    if level == "token":
        return log_ratio
    m = mask.to(log_ratio.dtype)
    sequence = (log_ratio * m).sum(dim=-1, keepdim=True) / m.sum(dim=-1, keepdim=True).clamp(min=1)
    if level == "sequence":
        return sequence.expand_as(log_ratio)
    return sequence.detach() + log_probs - log_probs.detach()


def clipped_surrogate(
    log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    clip_range: float = 0.2,
    clip_range_high: float | None = None,
    dual_clip: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token PPO loss ``-min(rho * A, clip(rho, 1 - eps_low, 1 + eps_high) * A)``.

    :param log_probs: ``(B, T)`` current log-probs (with grad).
    :param old_log_probs: ``(B, T)`` log-probs of the policy that sampled the tokens.
    :param advantages: ``(B,)`` one advantage per sequence (broadcast over its tokens) or ``(B, T)``.
    :param clip_range: ``eps_low`` (TRL's ``epsilon``).
    :param clip_range_high: ``eps_high`` (TRL's ``epsilon_high``); None means ``clip_range``.
    :param dual_clip: see :func:`surrogate_from_ratio`.
    :return: ``(per_token_loss, ratio)``, both ``(B, T)``.
    """
    ratio = torch.exp(log_probs - old_log_probs)
    return surrogate_from_ratio(ratio, advantages, clip_range, clip_range_high, dual_clip), ratio


def _eps(clip_range: float, clip_range_high: float | None) -> tuple[float, float]:
    eps_high = clip_range if clip_range_high is None else clip_range_high
    if clip_range < 0 or eps_high < 0:
        raise ValueError(f"clip ranges must be >= 0, got clip_range={clip_range}, clip_range_high={eps_high}")
    return clip_range, eps_high


def surrogate_from_ratio(
    ratio: torch.Tensor,
    advantages: torch.Tensor,
    clip_range: float = 0.2,
    clip_range_high: float | None = None,
    dual_clip: float | None = None,
) -> torch.Tensor:
    """The clipped surrogate of :func:`clipped_surrogate` for a given ``(B, T)`` ratio.

    :param dual_clip: ``c > 1``: for negative advantages the loss is also bounded by ``-c * A``,
        so one token whose ratio exploded cannot dominate the update (dual-clip PPO; None: off).
    """
    eps_low, eps_high = _eps(clip_range, clip_range_high)
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(1)
    clipped = torch.clamp(ratio, 1 - eps_low, 1 + eps_high)
    loss = -torch.min(ratio * advantages, clipped * advantages)
    if dual_clip is not None:
        if dual_clip <= 1:
            raise ValueError(f"dual_clip must be > 1 (verl's clip_ratio_c, typically 3), got {dual_clip}")
        loss = torch.where(advantages < 0, torch.min(loss, -dual_clip * advantages), loss)
    return loss


def cispo_surrogate(
    log_probs: torch.Tensor, ratio: torch.Tensor, advantages: torch.Tensor, clip_range_high: float = 0.2
) -> torch.Tensor:
    """CISPO's per-token loss ``-sg[min(rho, 1 + eps_high)] * A * log pi(y_t)``.

    A REINFORCE loss weighted by a clipped importance weight through which no gradient flows,
    so that every token, clipped or not, keeps a gradient (PPO's clip drops it); there is no
    lower bound on the weight, as in MiniMax-M1. At ``rho = 1`` its gradient equals PPO's.
    """
    if clip_range_high < 0:
        raise ValueError(f"clip_range_high must be >= 0, got {clip_range_high}")
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(1)
    weight = torch.clamp(ratio, max=1 + clip_range_high).detach()
    return -weight * advantages * log_probs


def high_entropy_mask(entropy: torch.Tensor, mask: torch.Tensor, quantile: float) -> torch.Tensor:
    """``mask`` restricted to the tokens whose entropy is in the top ``quantile`` of the masked-in
    tokens (ties at the threshold kept); ``quantile=1`` keeps every token."""
    if not 0 < quantile <= 1:
        raise ValueError(f"top_entropy_quantile must be in (0, 1], got {quantile}")
    if quantile == 1 or not bool(mask.any()):
        return mask
    threshold = torch.quantile(entropy.detach()[mask].float(), 1 - quantile)
    return mask & (entropy.detach() >= threshold)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over positions where ``mask`` is True (0 when there are none)."""
    m = mask.to(values.dtype)
    return (values * m).sum() / m.sum().clamp(min=1)
