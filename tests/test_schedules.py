"""Learning-rate schedules (functions of progress_remaining: 1 at the start, 0 at the end)."""

from __future__ import annotations

import itertools
import pickle

import pytest

from grpo_agent.common.schedules import (
    ConstantSchedule,
    CosineSchedule,
    LinearSchedule,
    make_schedule,
)


def test_schedule_values() -> None:
    assert ConstantSchedule(0.3)(0.0) == 0.3
    linear = LinearSchedule(1.0, 0.0)
    assert [linear(p) for p in (1.0, 0.5, 0.0)] == [1.0, 0.5, 0.0]
    cosine = CosineSchedule(1.0, 0.1)
    assert (
        cosine(1.0) == pytest.approx(1.0) and cosine(0.5) == pytest.approx(0.55) and cosine(0.0) == pytest.approx(0.1)
    )
    warm = CosineSchedule(1.0, 0.0, warmup_ratio=0.2)
    assert warm(1.0) == 0.0 and warm(0.9) == pytest.approx(0.5) and warm(0.8) == pytest.approx(1.0)
    assert warm(0.4) == pytest.approx(0.5)  # halfway through the decay
    # Monotone decay after warm-up.
    values = [warm(1 - i / 100) for i in range(20, 101)]
    assert all(a >= b for a, b in itertools.pairwise(values))


def test_make_schedule_and_pickling() -> None:
    assert make_schedule(0.1)(0.2) == 0.1
    assert make_schedule(0.1, "linear")(0.5) == pytest.approx(0.05)
    assert make_schedule(0.1, "cosine")(0.0) == pytest.approx(0.0)
    assert make_schedule(0.1, "constant", warmup_ratio=0.5)(0.75) == pytest.approx(0.05)
    custom = make_schedule(lambda p: p * 2)
    assert custom(0.25) == 0.5
    assert pickle.loads(pickle.dumps(CosineSchedule(1.0)))(0.5) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="lr_scheduler_type"):
        make_schedule(0.1, "exponential")
    with pytest.raises(ValueError, match="warmup_ratio"):
        make_schedule(0.1, "cosine", warmup_ratio=1.0)
