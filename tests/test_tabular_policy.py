"""TabularPolicy, and the GRPO update checked exactly on it by enumerating actions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces
from numeric import central_differences

from grpo_agent import GRPO, TabularPolicy
from grpo_agent.common.callbacks import make_callback
from grpo_agent.grpo.loss import grpo_loss
from grpo_envs.envs.bandit import ContextualBanditEnv

LOSS_TYPES = ["grpo", "bnpo", "dr_grpo", "dapo"]


def _policy(n_states: int = 3, n_actions: int = 4, seed: int = 0) -> TabularPolicy:
    logits = np.random.default_rng(seed).normal(size=(n_states, n_actions))
    return TabularPolicy(
        spaces.Discrete(n_states), spaces.Discrete(n_actions), initial_logits=logits, dtype=torch.float64
    )


# -- the policy itself --------------------------------------------------------------------


def test_sample_shapes_order_and_log_probs() -> None:
    policy = _policy()
    batch = policy.sample([2, 0], n=5)
    assert batch.token_ids.shape == (10, 1) and batch.mask.all() and not batch.truncated.any()
    assert batch.observations == [2] * 5 + [0] * 5
    assert batch.actions == batch.token_ids[:, 0].tolist()
    table = torch.log_softmax(policy.logits.detach(), -1)
    expected = table[torch.tensor(batch.observations), batch.token_ids[:, 0]].unsqueeze(1)
    assert torch.equal(batch.log_probs, expected)
    scores = policy.log_probs(batch)
    assert torch.equal(scores.log_probs.detach(), batch.log_probs)  # old == current at sampling time
    p = table.exp()
    assert torch.allclose(scores.entropy[:5, 0], -(p[2] * table[2]).sum().expand(5))
    assert policy.max_completion_length == 1


def test_sampling_frequencies_match_the_table() -> None:
    policy = _policy(n_states=1, n_actions=5)
    n = 40_000
    counts = np.bincount(policy.sample([0], n=n).actions, minlength=5)
    p = policy.action_probs()[0]
    sigma = np.sqrt(n * p * (1 - p))
    assert (np.abs(counts - n * p) < 5 * sigma).all()


def test_deterministic_sampling_is_the_argmax_and_predict_agrees() -> None:
    policy = _policy()
    greedy = policy.action_probs().argmax(axis=1)
    batch = policy.sample([0, 1, 2], n=3, deterministic=True)
    assert batch.actions == [int(a) for a in np.repeat(greedy, 3)]
    assert policy.predict(1, deterministic=True) == greedy[1]


def test_reference_is_frozen_until_reset() -> None:
    policy = _policy()
    ref_before = policy.reference_probs()
    batch = policy.sample([0, 1], n=4)
    ref_lp = policy.reference_log_probs(batch)
    assert not ref_lp.requires_grad
    with torch.no_grad():
        policy.logits.add_(1.0 * torch.arange(4.0, dtype=torch.float64))
    assert np.array_equal(policy.reference_probs(), ref_before)
    assert torch.equal(policy.reference_log_probs(batch), ref_lp)
    policy.reset_reference()
    assert np.allclose(policy.reference_probs(), policy.action_probs())


def test_seeded_sampling_and_rng_state_round_trip() -> None:
    a, b = _policy(), _policy()
    a.seed(7)
    b.seed(7)
    assert a.sample([0, 1, 2], n=8).actions == b.sample([0, 1, 2], n=8).actions
    state = a.get_rng_state()
    first = a.sample([0], n=20).actions
    a.set_rng_state(state)
    assert a.sample([0], n=20).actions == first


def test_bad_spaces_and_observations_are_rejected() -> None:
    with pytest.raises(TypeError, match="Discrete"):
        TabularPolicy(spaces.Box(0, 1, (2,)), spaces.Discrete(3))
    with pytest.raises(ValueError, match="initial_logits"):
        TabularPolicy(spaces.Discrete(2), spaces.Discrete(3), initial_logits=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="outside"):
        _policy().sample([5], n=2)


# -- the GRPO update on the tabular policy ------------------------------------------------


def _one_update(
    loss_type: str, n_groups: int, group_size: int, scale: str = "group", seed: int = 0
) -> tuple[GRPO, ContextualBanditEnv]:
    """Collect one rollout and run train() with lr 0: the gradient stays in logits.grad."""
    env = ContextualBanditEnv(n_states=3, n_actions=4, noise_std=0.1, table_seed=seed)
    logits = np.random.default_rng(seed).normal(size=(3, 4))
    model = GRPO(
        "tabular", env, learning_rate=0.0, group_size=group_size, n_groups=n_groups, beta=0.0,
        loss_type=loss_type, scale_rewards=scale, max_grad_norm=None, seed=seed, device="cpu",
        policy_kwargs={"initial_logits": logits, "dtype": torch.float64},
    )  # fmt: skip
    callback = make_callback(None)
    callback.init_callback(model)  # type: ignore[arg-type]
    assert model.collect_rollouts(env, callback)
    model.train()
    return model, env


def _per_row_reinforce(model: GRPO) -> np.ndarray:
    """Row i's term A_i * grad log pi(a_i | s_i), computed by hand: onehot(a) - pi(. | s)."""
    buffer = model.rollout_buffer
    probs = model.policy.action_probs()
    states = np.asarray(buffer.completions.observations)
    actions = np.asarray(buffer.completions.actions)
    adv = buffer.advantages.numpy()  # type: ignore[union-attr]
    terms = np.zeros((len(states), *probs.shape))
    for i, (s, a) in enumerate(zip(states, actions)):
        terms[i, s] = -probs[s]
        terms[i, s, a] += 1.0
        terms[i] *= adv[i]
    return terms


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_on_policy_loss_is_zero_and_its_gradient_is_reinforce_with_group_mean_baseline(loss_type: str) -> None:
    model, _ = _one_update(loss_type, n_groups=6, group_size=5)
    assert model.logger.name_to_value["train/loss"] == pytest.approx(0.0, abs=1e-12)
    terms = _per_row_reinforce(model)
    # T = 1, so every loss_type weighs each completion 1/B: grad of the loss = -mean_i term_i.
    expected = -terms.mean(axis=0)
    grad = model.policy.logits.grad
    assert grad is not None
    np.testing.assert_allclose(grad.numpy(), expected, atol=1e-12)


def test_expected_gradient_matches_the_analytic_gradient_of_expected_reward() -> None:
    group_size, n_groups = 4, 3000
    model, env = _one_update("grpo", n_groups=n_groups, group_size=group_size, scale="none", seed=3)
    probs, r = model.policy.action_probs(), env.mean_rewards
    # dJ/dlogits[s, a] = (1/S) pi(a|s) (r(s, a) - V(s)) under uniform contexts.
    analytic = probs * (r - (probs * r).sum(axis=1, keepdims=True)) / env.n_states
    # The group mean contains the sample's own reward: E[grad] = (G - 1) / G * dJ.
    expected = -(group_size - 1) / group_size * analytic
    per_group = -_per_row_reinforce(model).reshape(n_groups, group_size, *probs.shape).mean(axis=1)
    grad = model.policy.logits.grad.numpy()  # type: ignore[union-attr]
    np.testing.assert_allclose(grad, per_group.mean(axis=0), atol=1e-12)
    stderr = per_group.std(axis=0, ddof=1) / np.sqrt(n_groups)
    assert (np.abs(grad - expected) <= 5 * stderr + 1e-12).all(), (grad, expected, stderr)
    # And the test can fail: the gradient without the (G-1)/G factor is measurably different.
    assert (np.abs(grad + analytic) > 5 * stderr).any()


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
@pytest.mark.parametrize("estimator", ["k1", "k2", "k3"])
def test_loss_gradient_agrees_with_finite_differences(loss_type: str, estimator: str) -> None:
    policy = _policy(seed=1)
    with torch.no_grad():
        policy.reference_logits.copy_(torch.from_numpy(np.random.default_rng(9).normal(size=(3, 4))))
    batch = policy.sample([0, 1, 2, 1], n=6)
    gen = torch.Generator().manual_seed(2)
    # Old log-probs off the current ones by up to +-0.4 so some ratios fall outside the band.
    old = batch.log_probs + (torch.rand(batch.log_probs.shape, generator=gen, dtype=torch.float64) - 0.5) * 0.8
    adv = torch.randn(len(batch), generator=gen, dtype=torch.float64)
    ref = policy.reference_log_probs(batch)

    def loss_at(logits: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            policy.logits.copy_(logits)
        out = grpo_loss(
            policy.log_probs(batch).log_probs, old, adv, batch.mask, ref, beta=0.3, clip_range=0.2,
            clip_range_high=0.28, kl_estimator=estimator, loss_type=loss_type, max_completion_length=1,
        )  # fmt: skip
        return out.loss

    theta = policy.logits.detach().clone()
    policy.logits.grad = None
    loss_at(theta).backward()
    autograd = policy.logits.grad.clone()  # type: ignore[union-attr]
    numeric = central_differences(loss_at, theta)
    assert torch.allclose(autograd, numeric, atol=1e-8), (autograd, numeric)
    assert autograd.abs().max() > 1e-3  # not trivially zero


def test_clipping_zeroes_a_completions_gradient_on_the_tabular_policy() -> None:
    policy = _policy()
    batch = policy.sample([0, 1], n=1)  # one completion of state 0, one of state 1
    adv = torch.tensor([1.0, -1.0], dtype=torch.float64)

    def grad_with_log_ratio(log_ratio: torch.Tensor) -> torch.Tensor:
        policy.logits.grad = None
        out = grpo_loss(policy.log_probs(batch).log_probs, batch.log_probs - log_ratio.unsqueeze(1), adv, batch.mask)
        out.loss.backward()
        return policy.logits.grad.clone()  # type: ignore[union-attr]

    inside = grad_with_log_ratio(torch.tensor([0.1, -0.1], dtype=torch.float64))
    assert (inside[0] != 0).all() and (inside[1] != 0).all()
    # rho = 1.5 > 1.2 for the positive-advantage completion: its state's row gets no gradient.
    high = grad_with_log_ratio(torch.tensor([np.log(1.5), -0.1], dtype=torch.float64))
    assert (high[0] == 0).all() and torch.equal(high[1], inside[1])
    # rho = 0.5 < 0.8 for the negative-advantage completion: no gradient either.
    low = grad_with_log_ratio(torch.tensor([0.1, np.log(0.5)], dtype=torch.float64))
    assert (low[1] == 0).all() and torch.equal(low[0], inside[0])
