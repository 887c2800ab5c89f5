"""Several reward components: per-component normalisation (GDPO) and adaptive weights, exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from benchmark_scripts import load

from grpo_agent import GRPO
from grpo_agent.common.buffers import GroupRolloutBuffer
from grpo_agent.common.multi_objective import (
    VarianceShareWeights,
    component_terms,
    normalize_then_sum_advantages,
    variance_shares,
)
from grpo_agent.policies.base import CompletionBatch

# Two groups of G = 4, two components: in group 0 both vary, in group 1 only the second does.
COMPONENTS = torch.tensor(
    [
        [[1.0, 0.0], [0.0, 2.0], [0.0, 4.0], [1.0, 6.0]],
        [[1.0, 3.0], [1.0, 3.0], [1.0, 0.0], [1.0, 0.0]],
    ],
    dtype=torch.float64,
)
WEIGHTS = torch.tensor([2.0, 0.5], dtype=torch.float64)
EPS = 1e-4


def test_component_terms_are_weighted_centred_components_and_normalised_ones():
    terms = component_terms(COMPONENTS, WEIGHTS, "sum_then_normalize")
    # group 0: correct mean 0.5, second mean 3; group 1: first constant, second mean 1.5
    expected = torch.tensor(
        [
            [[1.0, -1.5], [-1.0, -0.5], [-1.0, 0.5], [1.0, 1.5]],
            [[0.0, 0.75], [0.0, 0.75], [0.0, -0.75], [0.0, -0.75]],
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(terms, expected, rtol=0, atol=1e-15)
    normalised = component_terms(COMPONENTS, WEIGHTS, "normalize_then_sum", EPS)
    std_a, std_b0, std_b1 = (1 / 3) ** 0.5, (20 / 3) ** 0.5, 3**0.5  # unbiased stds
    assert normalised[0, 0, 0].item() == pytest.approx(2.0 * 0.5 / (std_a + EPS), abs=1e-12)
    assert normalised[0, 3, 1].item() == pytest.approx(0.5 * 3 / (std_b0 + EPS), abs=1e-12)
    assert normalised[1, 0, 1].item() == pytest.approx(0.5 * 1.5 / (std_b1 + EPS), abs=1e-12)
    assert bool((normalised[1, :, 0] == 0).all())  # a constant component is exactly 0


def test_normalize_then_sum_is_trls_formula_and_a_constant_group_stays_zero():
    advantages, zero_std = normalize_then_sum_advantages(COMPONENTS, WEIGHTS, EPS)
    grouped = COMPONENTS
    per = (grouped - grouped.mean(1, keepdim=True)) / (grouped.std(1, keepdim=True) + EPS)
    summed = (per * WEIGHTS).sum(-1)
    trl = (summed - summed.mean()) / (summed.std() + EPS)  # TRL subtracts the batch mean, which is 0 here
    torch.testing.assert_close(advantages, trl, rtol=0, atol=1e-12)
    assert zero_std.tolist() == [False, False]
    constant = torch.ones(1, 4, 2, dtype=torch.float64)
    adv, zero = normalize_then_sum_advantages(torch.cat([COMPONENTS, constant]), WEIGHTS, EPS)
    assert zero.tolist() == [False, False, True] and bool((adv[2] == 0).all())


def test_variance_shares_are_each_components_energy_over_the_total():
    terms = component_terms(COMPONENTS, WEIGHTS)
    # energy: first 4 * 1 = 4; second 1.5^2*2 + 0.5^2*2 + 0.75^2*4 = 4.5 + 0.5 + 2.25 = 7.25
    assert variance_shares(terms).tolist() == pytest.approx([4 / 11.25, 7.25 / 11.25], abs=1e-15)
    assert variance_shares(torch.zeros(2, 4, 2)).tolist() == [0.0, 0.0]


@pytest.mark.parametrize("aggregation", ["sum_then_normalize", "normalize_then_sum"])
def test_adaptive_weights_at_rate_one_hit_the_targets_and_keep_the_total(aggregation):
    rule = VarianceShareWeights({"a": 2.0, "b": 0.5}, {"a": 0.3, "b": 0.7}, rate=1.0)
    shares = rule.update(component_terms(COMPONENTS, WEIGHTS, aggregation, EPS))
    assert shares == pytest.approx(
        dict(zip("ab", variance_shares(component_terms(COMPONENTS, WEIGHTS, aggregation, EPS)).tolist()))
    )
    new = torch.tensor([rule.weights["a"], rule.weights["b"]], dtype=torch.float64)
    assert float(new.sum()) == pytest.approx(2.5, abs=1e-12)
    after = variance_shares(component_terms(COMPONENTS, new, aggregation, EPS))
    assert after.tolist() == pytest.approx([0.3, 0.7], abs=1e-12)


def test_adaptive_weights_move_geometrically_and_leave_a_silent_component_alone():
    rule = VarianceShareWeights({"a": 1.0, "b": 1.0}, {"a": 0.5, "b": 0.5}, rate=0.5)
    terms = torch.tensor([[[1.0, 2.0], [-1.0, -2.0]]], dtype=torch.float64)  # energies 2 and 8
    rule.update(terms)
    # ideal w ∝ sqrt(0.5 / v): 1/2 : 1/4, scaled to total 2 -> 4/3, 2/3; half-way in log space
    a, b = (4 / 3) ** 0.5, (2 / 3) ** 0.5
    assert [rule.weights["a"], rule.weights["b"]] == pytest.approx([2 * a / (a + b), 2 * b / (a + b)], abs=1e-12)
    silent = VarianceShareWeights({"a": 1.0, "b": 3.0}, {"a": 0.5, "b": 0.5}, rate=1.0)
    silent.update(torch.tensor([[[1.0, 0.0], [-1.0, 0.0]]], dtype=torch.float64))
    assert silent.weights == {"a": 1.0, "b": 3.0}  # only one active component: nothing to balance


def test_adaptive_weights_refuse_bad_targets():
    with pytest.raises(ValueError, match="sum to 1"):
        VarianceShareWeights({"a": 1.0, "b": 1.0}, {"a": 0.5, "b": 0.6})
    with pytest.raises(ValueError, match="same components"):
        VarianceShareWeights({"a": 1.0, "b": 1.0}, {"a": 1.0})
    with pytest.raises(ValueError, match="set reward_weights"):
        GRPO("tabular", load("reward_weights").GameableBandit(), reward_weight_targets={"correct": 1.0})
    with pytest.raises(ValueError, match="advantage_estimator='grpo'"):
        GRPO(
            "tabular",
            load("reward_weights").GameableBandit(),
            reward_weights={"correct": 1.0, "style": 1.0},
            multi_objective_aggregation="normalize_then_sum",
            advantage_estimator="rloo",
        )


def test_the_buffer_computes_normalize_then_sum_from_its_components():
    buffer = GroupRolloutBuffer(group_size=4)
    rows = 8
    batch = CompletionBatch(
        observations=[0] * 4 + [1] * 4,
        actions=list(range(rows)),
        token_ids=torch.zeros(rows, 1, dtype=torch.long),
        log_probs=torch.zeros(rows, 1),
        mask=torch.ones(rows, 1, dtype=torch.bool),
        truncated=torch.zeros(rows, dtype=torch.bool),
    )
    flat = COMPONENTS.reshape(rows, 2).numpy()
    parts = {"a": flat[:, 0], "b": flat[:, 1]}
    buffer.add([0, 1], [0, 1], batch, flat @ WEIGHTS.numpy(), reward_components=parts)
    advantages = buffer.compute_advantages(aggregation="normalize_then_sum", component_weights={"a": 2.0, "b": 0.5})
    expected, _ = normalize_then_sum_advantages(COMPONENTS, WEIGHTS)
    torch.testing.assert_close(advantages, expected.reshape(-1), rtol=0, atol=0)


def test_grpo_logs_weights_and_shares_and_adaptive_weights_stop_the_gaming():
    bench = load("reward_weights")
    env = bench.GameableBandit()
    common = {"learning_rate": 0.1, "group_size": 8, "n_groups": 16, "beta": 0.04, "seed": 0}
    fixed = GRPO("tabular", env, reward_weights={"correct": 1.0, "style": 1.0}, **common).learn(4096)
    gamed = env.expected_components(fixed.policy.action_probs())
    # log_interval=0: no dump, so the last rollout's logged values stay readable.
    adaptive = GRPO(
        "tabular",
        env,
        reward_weights={"correct": 1.0, "style": 1.0},
        reward_weight_targets={"correct": 0.8, "style": 0.2},
        **common,
    ).learn(4096, log_interval=0)
    logged = adaptive.logger.name_to_value
    assert logged["rollout/reward_weight_correct"] > 1.0 > logged["rollout/reward_weight_style"]
    assert logged["rollout/advantage_share_correct"] + logged["rollout/advantage_share_style"] == pytest.approx(1.0)
    assert "rollout/reward_correct" in logged and "rollout/reward_style" in logged
    fair = env.expected_components(adaptive.policy.action_probs())
    # Fixed 1:1 weights learn the gaming action; adaptive shares learn the right one.
    assert gamed["gaming"] > 0.6 and gamed["correct"] < 0.1
    assert fair["correct"] > 0.6 and fair["gaming"] < 0.2
    assert sum(adaptive.current_reward_weights.values()) == pytest.approx(2.0)
    assert np.isfinite(list(adaptive.current_reward_weights.values())).all()


def test_adapted_weights_are_saved_and_loaded_with_the_agent(tmp_path):
    env = load("reward_weights").GameableBandit()
    model = GRPO(
        "tabular", env, learning_rate=0.1, n_groups=4, seed=0,
        reward_weights={"correct": 1.0, "style": 1.0}, reward_weight_targets={"correct": 0.8, "style": 0.2},
    ).learn(256)  # fmt: skip
    adapted = model.current_reward_weights
    assert adapted != {"correct": 1.0, "style": 1.0}
    model.save(tmp_path / "agent")
    loaded = GRPO.load(tmp_path / "agent", env=env)
    assert loaded.current_reward_weights == adapted
