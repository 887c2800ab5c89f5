"""The off-policy correction's formulas, checked on tensors against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from grpo_agent.common.rollout_correction import correction_weights, logprob_diff
from grpo_agent.grpo.loss import grpo_loss

# Two completions of 3 token slots; the second has 2 tokens and a padded slot holding junk.
TRAINER = torch.log(torch.tensor([[0.5, 0.4, 0.9], [0.2, 0.6, 0.3]], dtype=torch.float64))
ENGINE = torch.log(torch.tensor([[0.5, 0.1, 0.6], [0.4, 0.5, 0.7]], dtype=torch.float64))
MASK = torch.tensor([[True, True, True], [True, True, False]])
ENGINE_WITH_JUNK = ENGINE.clone()
ENGINE_WITH_JUNK[1, 2] = float("-inf")


def test_token_truncate_by_hand() -> None:
    w = correction_weights(TRAINER, ENGINE_WITH_JUNK, MASK, "token_truncate", cap=2.0)
    # ratios: 0.5/0.5=1, 0.4/0.1=4 -> 2, 0.9/0.6=1.5; 0.2/0.4=0.5, 0.6/0.5=1.2; padding 0
    expected = torch.tensor([[1.0, 2.0, 1.5], [0.5, 1.2, 0.0]], dtype=torch.float64)
    assert torch.allclose(w.weights, expected, atol=1e-12)
    assert w.ratio_mean.item() == pytest.approx((1 + 4 + 1.5 + 0.5 + 1.2) / 5)
    assert w.clip_fraction.item() == pytest.approx(1 / 5)


def test_token_mask_drops_the_tokens_over_the_cap() -> None:
    w = correction_weights(TRAINER, ENGINE_WITH_JUNK, MASK, "token_mask", cap=2.0)
    expected = torch.tensor([[1.0, 0.0, 1.5], [0.5, 1.2, 0.0]], dtype=torch.float64)
    assert torch.allclose(w.weights, expected, atol=1e-12)
    assert w.clip_fraction.item() == pytest.approx(1 / 5)


def test_sequence_truncate_by_hand() -> None:
    w = correction_weights(TRAINER, ENGINE_WITH_JUNK, MASK, "sequence_truncate", cap=3.0)
    first, second = 1 * 4 * 1.5, 0.5 * 1.2  # products of the token ratios: 6 -> 3, and 0.6
    expected = torch.tensor([[3.0, 3.0, 3.0], [second, second, 0.0]], dtype=torch.float64)
    assert torch.allclose(w.weights, expected, atol=1e-12)
    assert w.ratio_mean.item() == pytest.approx((first + second) / 2)
    assert w.clip_fraction.item() == pytest.approx(1 / 2)


def test_sequence_mask_drops_the_whole_completion() -> None:
    w = correction_weights(TRAINER, ENGINE_WITH_JUNK, MASK, "sequence_mask", cap=3.0)
    expected = torch.tensor([[0.0, 0.0, 0.0], [0.6, 0.6, 0.0]], dtype=torch.float64)
    assert torch.allclose(w.weights, expected, atol=1e-12)


@pytest.mark.parametrize("mode", ["token_truncate", "token_mask", "sequence_truncate", "sequence_mask"])
def test_equal_log_probs_give_weight_one(mode: str) -> None:
    w = correction_weights(TRAINER, TRAINER, MASK, mode)  # type: ignore[arg-type]
    assert torch.equal(w.weights, MASK.to(torch.float64))
    assert w.ratio_mean.item() == 1.0
    assert w.clip_fraction.item() == 0.0


def test_empty_completion_has_no_ratio() -> None:
    mask = torch.tensor([[True, True, True], [False, False, False]])
    w = correction_weights(TRAINER, ENGINE, mask, "sequence_truncate", cap=10.0)
    assert w.weights[1].abs().sum() == 0
    assert w.ratio_mean.item() == pytest.approx(6.0)  # the first completion's ratio alone


def test_bad_mode_and_cap_say_what_to_use() -> None:
    with pytest.raises(ValueError, match="rollout_correction"):
        correction_weights(TRAINER, ENGINE, MASK, "token")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=">= 1"):
        correction_weights(TRAINER, ENGINE, MASK, cap=0.5)


def test_logprob_diff_by_hand() -> None:
    d = logprob_diff(TRAINER, ENGINE_WITH_JUNK, MASK)
    diffs = [0.0, math.log(4), math.log(1.5), math.log(2), math.log(1.2)]
    assert d.mean.item() == pytest.approx(sum(diffs) / 5)
    assert d.max.item() == pytest.approx(math.log(4))
    empty = logprob_diff(TRAINER, ENGINE, torch.zeros_like(MASK))
    assert (empty.mean.item(), empty.max.item()) == (0.0, 0.0)


@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dr_grpo", "dapo"])
def test_grpo_loss_weights_only_the_policy_term(loss_type: str) -> None:
    """The weight multiplies each token's surrogate, not its KL term (TRL applies it before adding KL)."""
    g = torch.Generator().manual_seed(0)
    logp = torch.randn(4, 5, generator=g, dtype=torch.float64) - 1
    old = logp + 0.1 * torch.randn(4, 5, generator=g, dtype=torch.float64)
    ref = logp + 0.2 * torch.randn(4, 5, generator=g, dtype=torch.float64)
    adv = torch.randn(4, generator=g, dtype=torch.float64)
    mask = torch.rand(4, 5, generator=g) > 0.2
    weights = torch.rand(4, 5, generator=g, dtype=torch.float64) * 2
    kwargs = {"loss_type": loss_type, "max_completion_length": 5, "num_tokens": float(mask.sum())}
    weighted = grpo_loss(logp, old, adv, mask, ref, beta=0.1, is_weights=weights, **kwargs)  # type: ignore[arg-type]
    # By hand: the clipped surrogate of each token times its weight, plus beta * k3.
    ratio = torch.exp(logp - old)
    a = adv.unsqueeze(1)
    surrogate = -torch.min(ratio * a, ratio.clamp(0.8, 1.2) * a)
    kl = torch.exp(ref - logp) - (ref - logp) - 1
    m = mask.to(torch.float64)
    per_token = (surrogate * weights + 0.1 * kl) * m
    if loss_type == "grpo":
        expected = (per_token.sum(1) / m.sum(1).clamp(min=1)).mean()
    elif loss_type == "dr_grpo":
        expected = per_token.sum() / (4 * 5)
    else:
        expected = per_token.sum() / m.sum()
    assert weighted.loss.item() == pytest.approx(expected.item(), rel=1e-12)
    ones = grpo_loss(logp, old, adv, mask, ref, beta=0.1, is_weights=torch.ones(4, 5, dtype=torch.float64), **kwargs)  # type: ignore[arg-type]
    plain = grpo_loss(logp, old, adv, mask, ref, beta=0.1, **kwargs)  # type: ignore[arg-type]
    assert ones.loss.item() == plain.loss.item()
