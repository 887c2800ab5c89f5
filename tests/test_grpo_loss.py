"""The GRPO loss functions in isolation: advantages, clipped surrogate, KL, aggregation, masks."""

from __future__ import annotations

import math

import pytest
import torch

from grpo_agent.grpo.loss import (
    aggregate_loss,
    clipped_surrogate,
    group_advantages,
    grpo_loss,
    kl_penalty,
)

LOSS_TYPES = ["grpo", "bnpo", "dr_grpo", "dapo"]


# -- advantages ---------------------------------------------------------------------------


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
@pytest.mark.parametrize("value", [0.0, 1.0, 0.1, -3.7, 1e9])
def test_constant_reward_group_has_exactly_zero_advantage(scale: str, value: float) -> None:
    # 0.1 * 7 / 7 != 0.1 in floating point: the zero must not depend on the mean being exact.
    rewards = torch.tensor([[value] * 7, [0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.5]], dtype=torch.float64)
    adv, zero_std = group_advantages(rewards, scale_rewards=scale)
    assert zero_std.tolist() == [True, False]
    assert torch.equal(adv[0], torch.zeros(7, dtype=torch.float64))
    assert adv[1].abs().sum() > 0


def test_no_blow_up_as_std_goes_to_zero() -> None:
    for delta in [1e-2, 1e-5, 1e-8, 1e-12, 1e-15]:
        rewards = torch.tensor([[1.0, 1.0 + delta, 1.0, 1.0 + delta]], dtype=torch.float64)
        adv, _ = group_advantages(rewards, std_eps=1e-4)
        actual = (rewards[0, 1] - rewards[0, 0]).item()  # 1 + delta rounds in float64
        # |A| <= |r - mean| / eps <= range / eps, which vanishes with delta (the computed mean
        # may sit an ulp off the midpoint, hence the range rather than half of it).
        assert adv.abs().max() <= actual / 1e-4
        assert torch.isfinite(adv).all()


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_advantages_sum_to_zero_in_each_group(scale: str) -> None:
    rewards = torch.rand(50, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    adv, _ = group_advantages(rewards, scale_rewards=scale)
    assert adv.sum(dim=1).abs().max() < 1e-12


def test_group_advantages_by_hand() -> None:
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [3.0, 1.0, 2.0, 2.0]], dtype=torch.float64)
    adv, _ = group_advantages(rewards, std_eps=0.0)
    s0 = math.sqrt(4 * 0.25 / 3)  # unbiased std of (1, 0, 0, 1)
    s1 = math.sqrt(2 / 3)  # unbiased std of (3, 1, 2, 2)
    expected = torch.tensor(
        [[0.5 / s0, -0.5 / s0, -0.5 / s0, 0.5 / s0], [1 / s1, -1 / s1, 0.0, 0.0]], dtype=torch.float64
    )
    assert torch.allclose(adv, expected, atol=1e-12)
    batch_adv, _ = group_advantages(rewards, scale_rewards="batch", std_eps=0.0)
    assert torch.allclose(batch_adv, (rewards - rewards.mean(1, keepdim=True)) / rewards.std(), atol=1e-12)
    none_adv, _ = group_advantages(rewards, scale_rewards="none")
    assert torch.allclose(none_adv, rewards - rewards.mean(1, keepdim=True), atol=1e-12)


@pytest.mark.parametrize(("a", "b"), [(2.0, 0.0), (0.01, 5.0), (100.0, -3.0)])
def test_group_scaling_is_invariant_to_affine_reward_changes(a: float, b: float) -> None:
    rewards = torch.rand(20, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    exact, _ = group_advantages(rewards, std_eps=0.0)
    exact_t, _ = group_advantages(a * rewards + b, std_eps=0.0)
    assert torch.allclose(exact, exact_t, atol=1e-9)
    # With the default eps the invariance holds up to eps / std.
    default, _ = group_advantages(rewards)
    default_t, _ = group_advantages(a * rewards + b)
    assert torch.allclose(default, default_t, rtol=0, atol=1e-4 / min(a, 1.0) / rewards.std(1).min().item() * 3)


def test_advantage_clip_threshold_and_baseline() -> None:
    rewards = torch.tensor([[0.0, 0.0, 0.0, 10.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    clipped, _ = group_advantages(rewards, advantage_clip=1.0)
    assert clipped.max() == 1.0 and clipped.min() >= -1.0
    with pytest.raises(ValueError, match="advantage_clip"):
        group_advantages(rewards, advantage_clip=0.0)

    thresholded, _ = group_advantages(rewards, reward_threshold=0.5)
    assert torch.equal(thresholded[1], torch.full((4,), 0.5, dtype=torch.float64))
    assert torch.equal(thresholded[2], torch.full((4,), -0.5, dtype=torch.float64))
    plain, _ = group_advantages(rewards)
    assert torch.equal(thresholded[0], plain[0])

    baseline = torch.tensor([5.0, float("nan"), 0.0], dtype=torch.float64)
    mixed, _ = group_advantages(rewards, baseline=baseline, baseline_coef=1.0, std_eps=0.0)
    assert torch.allclose(mixed[0], (rewards[0] - 5.0) / rewards[0].std())
    half, _ = group_advantages(rewards, baseline=baseline, baseline_coef=0.5, std_eps=0.0)
    assert torch.allclose(half[0], (rewards[0] - 0.5 * (2.5 + 5.0)) / rewards[0].std())
    assert torch.equal(mixed[1], torch.zeros(4, dtype=torch.float64))  # zero-std stays 0 with a baseline


def test_bad_advantage_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="G >= 2"):
        group_advantages(torch.zeros(3, 1))
    with pytest.raises(ValueError, match="scale_rewards"):
        group_advantages(torch.zeros(3, 2), scale_rewards="grp")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="baseline_coef"):
        group_advantages(torch.zeros(3, 2), baseline_coef=1.5)


# -- KL estimators ------------------------------------------------------------------------


def _random_dist(n: int, seed: int) -> torch.Tensor:
    return torch.log_softmax(torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2, -1)


def test_k3_is_nonnegative_and_zero_only_at_the_reference() -> None:
    logp = torch.randn(1000, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3
    ref = torch.randn(1000, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 3
    k3 = kl_penalty(logp, ref, "k3")
    assert (k3 >= 0).all() and (k3 > 0).all()
    assert torch.equal(kl_penalty(logp, logp, "k3"), torch.zeros_like(logp))
    assert (kl_penalty(logp, ref, "k2") >= 0).all()


@pytest.mark.parametrize("estimator", ["k1", "k3"])
def test_unbiased_estimators_mean_under_the_policy_is_the_exact_kl(estimator: str) -> None:
    for seed in range(5):
        logp, ref = _random_dist(7, seed), _random_dist(7, seed + 100)
        exact_kl = (logp.exp() * (logp - ref)).sum()
        expectation = (logp.exp() * kl_penalty(logp, ref, estimator)).sum()  # enumerate all actions
        assert expectation.item() == pytest.approx(exact_kl.item(), abs=1e-12)


def test_k2_is_biased_but_close_for_nearby_policies() -> None:
    logp = _random_dist(5, 0)
    ref = torch.log_softmax(
        logp + 0.01 * torch.randn(5, generator=torch.Generator().manual_seed(3), dtype=torch.float64), -1
    )
    exact_kl = (logp.exp() * (logp - ref)).sum()
    k2 = (logp.exp() * kl_penalty(logp, ref, "k2")).sum()
    assert k2.item() == pytest.approx(exact_kl.item(), rel=0.05)
    with pytest.raises(ValueError, match="kl_estimator"):
        kl_penalty(logp, ref, "k4")  # type: ignore[arg-type]


# -- clipping -----------------------------------------------------------------------------


def _surrogate_grad(log_ratio: float, advantage: float, low: float = 0.2, high: float | None = None) -> float:
    logp = torch.tensor([[log_ratio]], dtype=torch.float64, requires_grad=True)
    loss, _ = clipped_surrogate(
        logp, torch.zeros(1, 1, dtype=torch.float64), torch.tensor([advantage], dtype=torch.float64), low, high
    )
    loss.sum().backward()
    assert logp.grad is not None
    return float(logp.grad.item())


@pytest.mark.parametrize(("low", "high"), [(0.2, None), (0.2, 0.28), (0.1, 0.5)])
def test_clipping_zeroes_the_gradient_only_outside_the_band(low: float, high: float | None) -> None:
    eps_high = low if high is None else high
    above, below, inside = math.log(1 + eps_high + 0.05), math.log(1 - low - 0.05), math.log(1 + eps_high / 2)
    # A > 0 and rho > 1 + eps_high: clipped, no gradient.
    assert _surrogate_grad(above, 2.0, low, high) == 0.0
    # A < 0 and rho < 1 - eps_low: clipped, no gradient.
    assert _surrogate_grad(below, -2.0, low, high) == 0.0
    # Inside the band the gradient of -rho * A w.r.t. log pi is -rho * A, untouched.
    for log_ratio in (inside, math.log(1 - low / 2), 0.0):
        for adv in (2.0, -2.0):
            assert _surrogate_grad(log_ratio, adv, low, high) == pytest.approx(-math.exp(log_ratio) * adv)
    # The pessimistic min keeps the unclipped term on the other sides.
    assert _surrogate_grad(above, -2.0, low, high) == pytest.approx(-math.exp(above) * -2.0)
    assert _surrogate_grad(below, 2.0, low, high) == pytest.approx(-math.exp(below) * 2.0)


def test_clip_fractions_count_the_clipped_tokens() -> None:
    log_ratio = torch.tensor([[math.log(1.5)], [math.log(0.5)], [0.0], [math.log(1.5)]])
    adv = torch.tensor([1.0, -1.0, 1.0, -1.0])
    out = grpo_loss(log_ratio, torch.zeros(4, 1), adv, torch.ones(4, 1, dtype=torch.bool))
    assert out.clip_fraction_high.item() == pytest.approx(0.25)
    assert out.clip_fraction_low.item() == pytest.approx(0.25)
    with pytest.raises(ValueError, match="clip ranges"):
        clipped_surrogate(log_ratio, torch.zeros(4, 1), adv, -0.1)


# -- aggregation and masks ----------------------------------------------------------------


def _ragged_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """3 sequences of lengths 1, 3, 2 padded to T = 4, random log-probs and advantages."""
    gen = torch.Generator().manual_seed(0)
    mask = torch.tensor([[1, 0, 0, 0], [1, 1, 1, 0], [1, 1, 0, 0]], dtype=torch.bool)
    logp = -torch.rand(3, 4, generator=gen, dtype=torch.float64)
    adv = torch.tensor([1.5, -0.5, 0.25], dtype=torch.float64)
    return logp, mask, adv


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_on_policy_gradient_is_reinforce_with_each_loss_types_token_weights(loss_type: str) -> None:
    logp0, mask, adv = _ragged_batch()
    logp = logp0.clone().requires_grad_(True)
    out = grpo_loss(logp, logp.detach(), adv, mask, loss_type=loss_type, max_completion_length=5, num_tokens=12.0)
    out.loss.backward()
    lengths = mask.sum(1, keepdim=True).double()
    weight = {
        "grpo": 1 / (3 * lengths).expand(3, 4),
        "bnpo": torch.full((3, 4), 1 / 6, dtype=torch.float64),
        "dapo": torch.full((3, 4), 1 / 12, dtype=torch.float64),
        "dr_grpo": torch.full((3, 4), 1 / (3 * 5), dtype=torch.float64),
    }[loss_type]
    expected = torch.where(mask, -adv.unsqueeze(1) * weight, torch.zeros((), dtype=torch.float64))
    assert logp.grad is not None
    assert torch.allclose(logp.grad, expected, atol=1e-14)


def test_dapo_without_num_tokens_equals_bnpo_and_dr_grpo_needs_a_length() -> None:
    logp, mask, adv = _ragged_batch()
    per_token, _ = clipped_surrogate(logp, logp - 0.1, adv)
    assert aggregate_loss(per_token, mask, "dapo") == aggregate_loss(per_token, mask, "bnpo")
    with pytest.raises(ValueError, match="max_completion_length"):
        aggregate_loss(per_token, mask, "dr_grpo")
    with pytest.raises(ValueError, match="loss_type"):
        aggregate_loss(per_token, mask, "gspo")  # type: ignore[arg-type]


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
@pytest.mark.parametrize("garbage", [0.0, 1e6, float("inf"), float("-inf"), float("nan")])
def test_masked_positions_contribute_nothing(loss_type: str, garbage: float) -> None:
    logp0, mask, adv = _ragged_batch()
    old = logp0 - 0.3 * torch.rand(3, 4, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    ref = logp0 + 0.2

    def run(fill: float) -> tuple[torch.Tensor, torch.Tensor]:
        def dirty(t: torch.Tensor) -> torch.Tensor:
            return torch.where(mask, t, torch.tensor(fill, dtype=torch.float64))

        logp = dirty(logp0).requires_grad_(True)
        out = grpo_loss(
            logp,
            dirty(old),
            adv,
            mask,
            dirty(ref),
            beta=0.1,
            loss_type=loss_type,
            max_completion_length=4,
            num_tokens=6.0,
        )
        out.loss.backward()
        assert logp.grad is not None
        return out.loss.detach(), logp.grad

    clean_loss, clean_grad = run(0.0)
    loss, grad = run(garbage)
    assert torch.isfinite(loss) and torch.equal(loss, clean_loss)
    assert torch.equal(grad, clean_grad)
    assert (grad[~mask] == 0).all()


def test_beta_needs_reference_log_probs() -> None:
    logp, mask, adv = _ragged_batch()
    with pytest.raises(ValueError, match="ref_log_probs"):
        grpo_loss(logp, logp, adv, mask, beta=0.04)
    out = grpo_loss(logp, logp, adv, mask)
    assert math.isnan(out.kl.item()) and out.approx_kl.item() == 0.0
