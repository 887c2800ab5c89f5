"""Off-policy correction for a rollout engine whose log-probs differ from the trainer's.

An inference engine (vLLM) samples with its own kernels, precision and batching, so the
probability it assigned to a token, ``q(y_t)``, is not exactly the trainer's ``pi_old(y_t)``
for the same weights: the samples are slightly off-policy. The trainer recomputes
``pi_old`` with its own forward (TRL's default) and reweights each token's policy-gradient
term by a truncated importance ratio ``min(pi_old / q, C)`` (Yao et al. 2025, "Your efficient
RL framework secretly brings you off-policy RL training"; TRL's
``vllm_importance_sampling_correction``, verl's ``rollout_correction``).

Pure tensor functions over ``(B, T)`` log-probs and a mask, like :mod:`~grpo_agent.common.losses`.

The modes (TRL's names):

- ``token_truncate``: per token, ``w_t = min(exp(log pi_old(y_t) - log q(y_t)), C)``;
- ``token_mask``: per token, ``w_t = rho_t`` where ``rho_t <= C``, else 0 (the token is dropped);
- ``sequence_truncate``: one ratio per completion, ``w = min(exp(sum_t (log pi_old - log q)), C)``,
  the same at every token of the completion;
- ``sequence_mask``: the sequence ratio where it is ``<= C``, else 0 (the completion is dropped).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch

from grpo_agent.common.utils import check_choice

RolloutCorrection = Literal["token_truncate", "token_mask", "sequence_truncate", "sequence_mask"]

#: TRL's default cap (``vllm_importance_sampling_clip_max``).
DEFAULT_CORRECTION_CAP = 3.0


class CorrectionWeights(NamedTuple):
    """The importance weights of a rollout and what they say about the engine/trainer mismatch.

    :param weights: ``(B, T)`` per-token weights of the policy-gradient term; 0 outside the mask.
    :param ratio_mean: mean of the untruncated ratio ``pi_old / q`` over the tokens (token
        modes) or completions (sequence modes) it is computed on.
    :param clip_fraction: the fraction of those ratios that exceeded the cap (truncated or masked).
    """

    weights: torch.Tensor
    ratio_mean: torch.Tensor
    clip_fraction: torch.Tensor


class LogProbDiff(NamedTuple):
    """``|log pi_old - log q|`` over the masked-in tokens: its mean and its maximum."""

    mean: torch.Tensor
    max: torch.Tensor


def check_rollout_correction(mode: str, cap: float) -> None:
    """Refuse an unknown mode or a cap below 1, saying what to use."""
    check_choice("rollout_correction", mode, RolloutCorrection)
    if cap < 1:
        raise ValueError(f"rollout_correction_cap must be >= 1 (TRL's default is 3), got {cap}")


def logprob_diff(trainer_log_probs: torch.Tensor, engine_log_probs: torch.Tensor, mask: torch.Tensor) -> LogProbDiff:
    """How far the engine's per-token log-probs are from the trainer's (logged as
    ``rollout/logprob_diff_mean`` and ``rollout/logprob_diff_max``); 0 and 0 for an empty mask.

    >>> d = logprob_diff(torch.tensor([[-1.0, -2.0]]), torch.tensor([[-1.5, -2.0]]), torch.tensor([[True, True]]))
    >>> float(d.mean), float(d.max)
    (0.25, 0.5)
    """
    mask = mask.bool()
    diff = torch.where(mask, (trainer_log_probs - engine_log_probs).abs(), torch.zeros_like(trainer_log_probs))
    n = mask.sum()
    if n == 0:
        zero = diff.new_zeros(())
        return LogProbDiff(zero, zero)
    return LogProbDiff(diff.sum() / n, diff.max())


def correction_weights(
    trainer_log_probs: torch.Tensor,
    engine_log_probs: torch.Tensor,
    mask: torch.Tensor,
    mode: RolloutCorrection = "token_truncate",
    cap: float = DEFAULT_CORRECTION_CAP,
) -> CorrectionWeights:
    """Importance weights ``pi_old / q`` of sampled tokens, truncated or masked at ``cap``.

    :param trainer_log_probs: ``(B, T)`` ``log pi_old(y_t)``: the trainer's forward over the
        sampled completions with the weights they were sampled with.
    :param engine_log_probs: ``(B, T)`` ``log q(y_t)``: what the engine reported when sampling.
    :param mask: ``(B, T)`` the policy's own tokens; weights are 0 elsewhere.
    :param mode: see the module docstring.
    :param cap: ``C >= 1``.

    >>> w = correction_weights(torch.log(torch.tensor([[0.5, 0.4]])), torch.log(torch.tensor([[0.5, 0.1]])),
    ...                        torch.tensor([[True, True]]), "token_truncate", cap=3.0)
    >>> [round(x, 6) for x in w.weights[0].tolist()], float(w.clip_fraction)
    ([1.0, 3.0], 0.5)
    """
    check_rollout_correction(mode, cap)
    mask = mask.bool()
    zero = torch.zeros((), dtype=trainer_log_probs.dtype, device=trainer_log_probs.device)
    # Padded positions may hold anything; only masked-in tokens enter the ratio.
    log_diff = torch.where(mask, trainer_log_probs - engine_log_probs, zero)
    if mode.startswith("token"):
        ratio = torch.exp(log_diff)
        counted = mask
    else:
        ratio = torch.exp(log_diff.sum(dim=1, keepdim=True)).expand_as(log_diff)
        # one ratio per completion that has tokens; an empty completion has no ratio
        counted = torch.zeros_like(mask)
        counted[:, 0] = mask.any(dim=1)
    over = ratio > cap
    weights = ratio.clamp(max=cap) if mode.endswith("truncate") else torch.where(over, zero, ratio)
    weights = torch.where(mask, weights, zero)
    n = counted.sum().clamp(min=1)
    return CorrectionWeights(
        weights=weights,
        ratio_mean=torch.where(counted, ratio, zero).sum() / n,
        clip_fraction=(over & counted).sum().to(ratio.dtype) / n,
    )
