"""GroupRolloutBuffer and the running task baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from grpo_agent import GroupRolloutBuffer, RunningTaskBaseline, TabularPolicy
from grpo_agent.policies import CompletionBatch


def _filled(rewards: list[list[float]], with_ref: bool = True) -> tuple[GroupRolloutBuffer, CompletionBatch]:
    g = len(rewards[0])
    policy = TabularPolicy(spaces.Discrete(len(rewards)), spaces.Discrete(3))
    policy.seed(0)
    obs = list(range(len(rewards)))
    batch = policy.sample(obs, n=g)
    buffer = GroupRolloutBuffer(group_size=g)
    ref = policy.reference_log_probs(batch) if with_ref else None
    flat = np.asarray(rewards).reshape(-1)
    buffer.add(obs, [f"t{i}" for i in obs], batch, flat, ref, {"format": flat * 0 + 1.0, "answer": flat})
    return buffer, batch


def test_advantages_by_hand_and_zero_std_groups() -> None:
    buffer, _ = _filled([[1.0, 0.0, 0.0, 1.0], [0.5, 0.5, 0.5, 0.5]])
    assert buffer.n_groups == 2 and len(buffer) == 8
    adv = buffer.compute_advantages(std_eps=0.0)
    s = np.std([1, 0, 0, 1], ddof=1)
    np.testing.assert_allclose(adv[:4].numpy(), np.array([0.5, -0.5, -0.5, 0.5]) / s, atol=1e-12)
    assert torch.equal(adv[4:], torch.zeros(4, dtype=torch.float64))
    assert buffer.zero_std is not None and buffer.zero_std.tolist() == [False, True]
    assert buffer.component_means() == {"format": 1.0, "answer": pytest.approx(0.5)}


def test_minibatches_cover_every_completion_once() -> None:
    buffer, batch = _filled([[1.0, 0.0, 2.0], [0.0, 3.0, 1.0], [1.0, 1.0, 0.0]])
    buffer.compute_advantages()
    seen_adv, sizes = [], []
    for samples in buffer.get(batch_size=4, rng=np.random.default_rng(0)):
        sizes.append(len(samples.completions))
        seen_adv.extend(samples.advantages.tolist())
        assert samples.ref_log_probs is not None and samples.ref_log_probs.shape == (len(samples.completions), 1)
        # Rows stay aligned: each row's reward, advantage and completion belong together.
        for row in range(len(samples.completions)):
            (match,) = [
                i for i in range(len(batch))
                if buffer.advantages[i].item() == samples.advantages[row].item()  # type: ignore[index]
                and batch.actions[i] == samples.completions.actions[row]
                and batch.observations[i] == samples.completions.observations[row]
            ][:1]  # fmt: skip
            assert buffer.rewards.reshape(-1)[match] == samples.rewards[row]
    assert sizes == [4, 4, 1]
    assert sorted(seen_adv) == sorted(buffer.advantages.tolist())  # type: ignore[union-attr]
    whole = list(buffer.get())
    assert len(whole) == 1 and torch.equal(whole[0].advantages, buffer.advantages)


def test_keep_groups_drops_whole_groups() -> None:
    buffer, batch = _filled([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
    buffer.keep_groups(~buffer.group_zero_std())
    assert buffer.n_groups == 2 and buffer.task_ids == ["t0", "t2"]
    assert buffer.rewards.tolist() == [[1.0, 0.0], [0.0, 2.0]]
    assert buffer.completions.actions == [batch.actions[i] for i in (0, 1, 4, 5)]
    assert buffer.ref_log_probs is not None and buffer.ref_log_probs.shape == (4, 1)
    assert buffer.component_means()["answer"] == pytest.approx(0.75)
    buffer.keep_groups([False, False])
    assert len(buffer) == 0


def test_buffer_errors_say_what_to_do() -> None:
    with pytest.raises(ValueError, match="group_size"):
        GroupRolloutBuffer(group_size=1)
    buffer, batch = _filled([[1.0, 0.0]], with_ref=False)
    with pytest.raises(ValueError, match="compute_advantages"):
        next(buffer.get())
    with pytest.raises(ValueError, match="expected 1 task ids"):
        buffer.add([0], ["t0"], batch, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="empty"):
        _ = GroupRolloutBuffer(2).completions
    assert buffer.ref_log_probs is None


def test_running_task_baseline_is_an_ema_per_task() -> None:
    baseline = RunningTaskBaseline(decay=0.5)
    assert torch.isnan(baseline(["a"])).all()
    baseline.update(["a", "b"], [1.0, 0.0])
    baseline.update(["a"], [0.0])
    assert baseline(["a", "b", "c"])[:2].tolist() == [0.5, 0.0]
    with pytest.raises(ValueError, match="decay"):
        RunningTaskBaseline(decay=1.0)

    buffer, _ = _filled([[1.0, 0.0, 0.0, 1.0]])
    learned = RunningTaskBaseline(decay=0.0)
    learned.update(["t0"], [0.0])
    adv = buffer.compute_advantages(std_eps=0.0, baseline=learned, baseline_coef=1.0)
    np.testing.assert_allclose(adv.numpy(), np.array([1, 0, 0, 1]) / np.std([1, 0, 0, 1], ddof=1))
    assert learned.values["t0"] == 0.5  # updated after use with this group's mean


def test_concatenate_pads_ragged_batches() -> None:
    a = CompletionBatch(
        observations=["p"], actions=["x"], token_ids=torch.tensor([[5, 6]]), mask=torch.tensor([[True, True]]),
        log_probs=torch.tensor([[-1.0, -2.0]]), truncated=torch.tensor([False]),
    )  # fmt: skip
    b = CompletionBatch(
        observations=["q"], actions=["yz"], token_ids=torch.tensor([[7, 8, 9]]),
        mask=torch.tensor([[True, True, False]]),
        log_probs=torch.tensor([[-1.0, -1.0, 0.0]]), truncated=torch.tensor([True]),
    )  # fmt: skip
    both = CompletionBatch.concatenate([a, b], pad_token_id=0)
    assert both.token_ids.tolist() == [[5, 6, 0], [7, 8, 9]]
    assert both.mask.tolist() == [[True, True, False], [True, True, False]]
    assert both.completion_lengths.tolist() == [2, 2]
    assert both.index([1]).actions == ["yz"]
    with pytest.raises(ValueError, match="shape"):
        CompletionBatch(["p"], ["x"], torch.zeros(2, 1, dtype=torch.long), torch.ones(1, 1, dtype=torch.bool),
                        torch.zeros(1, 1), torch.zeros(1, dtype=torch.bool))  # fmt: skip


def test_rollout_buffer_checks_shapes_and_yields_every_row_once() -> None:
    from grpo_agent.common.buffers import RolloutBuffer

    policy = TabularPolicy(spaces.Discrete(2), spaces.Discrete(3))
    policy.seed(0)
    batch = policy.sample([0, 1, 0, 1, 0], n=1)
    buffer = RolloutBuffer()
    with pytest.raises(ValueError, match="empty"):
        next(buffer.get())
    values = torch.arange(5.0).reshape(5, 1)
    with pytest.raises(ValueError, match="advantages must have the completions' shape"):
        buffer.add(batch, values, torch.zeros(5), values)
    buffer.add(batch, values, -values, 2 * values)
    minibatches = list(buffer.get(2, np.random.default_rng(0)))
    assert [len(mb.completions) for mb in minibatches] == [2, 2, 1]
    seen = torch.cat([mb.old_values for mb in minibatches]).flatten()
    assert sorted(seen.tolist()) == [0.0, 1.0, 2.0, 3.0, 4.0]
    for mb in minibatches:
        assert torch.equal(mb.advantages, -mb.old_values) and torch.equal(mb.returns, 2 * mb.old_values)
