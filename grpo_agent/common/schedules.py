"""Learning-rate schedules, as functions of ``progress_remaining`` (1 at the start, 0 at the end).

The convention is stable-baselines3's: ``learning_rate`` may be a float or any callable
``progress_remaining -> value``. These classes are picklable, so a saved agent keeps its
schedule. ``make_schedule`` also understands TRL's ``lr_scheduler_type`` names.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

Schedule = Callable[[float], float]
#: TRL's ``lr_scheduler_type`` values this project implements.
SchedulerType = Literal["constant", "linear", "cosine"]


class ConstantSchedule:
    """Always ``value``."""

    def __init__(self, value: float) -> None:
        self.value = float(value)

    def __call__(self, progress_remaining: float) -> float:
        return self.value

    def __repr__(self) -> str:
        return f"ConstantSchedule({self.value})"


def _warmup_progress(progress_remaining: float, warmup_ratio: float) -> tuple[float, float]:
    """Split training progress into (warm-up factor, progress after warm-up in [0, 1])."""
    progress = min(max(1.0 - progress_remaining, 0.0), 1.0)
    if warmup_ratio > 0 and progress < warmup_ratio:
        return progress / warmup_ratio, 0.0
    return 1.0, (progress - warmup_ratio) / max(1.0 - warmup_ratio, 1e-12)


class LinearSchedule:
    """Linear warm-up from 0 over ``warmup_ratio`` of training, then linear from ``initial`` to
    ``final``.

    :param initial: value after warm-up.
    :param final: value at the end of training.
    :param warmup_ratio: fraction of training spent warming up (TRL's ``warmup_ratio``).
    """

    def __init__(self, initial: float, final: float = 0.0, warmup_ratio: float = 0.0) -> None:
        self.initial, self.final, self.warmup_ratio = float(initial), float(final), float(warmup_ratio)

    def __call__(self, progress_remaining: float) -> float:
        warm, p = _warmup_progress(progress_remaining, self.warmup_ratio)
        return warm * (self.initial + (self.final - self.initial) * p)

    def __repr__(self) -> str:
        return f"LinearSchedule({self.initial}, {self.final}, warmup_ratio={self.warmup_ratio})"


class CosineSchedule:
    """Linear warm-up, then half a cosine from ``initial`` down to ``final``
    (Loshchilov & Hutter 2017, "SGDR", without restarts; Hugging Face's ``cosine``).

    :param initial: value after warm-up.
    :param final: value at the end of training.
    :param warmup_ratio: fraction of training spent warming up.
    """

    def __init__(self, initial: float, final: float = 0.0, warmup_ratio: float = 0.0) -> None:
        self.initial, self.final, self.warmup_ratio = float(initial), float(final), float(warmup_ratio)

    def __call__(self, progress_remaining: float) -> float:
        warm, p = _warmup_progress(progress_remaining, self.warmup_ratio)
        return warm * (self.final + 0.5 * (self.initial - self.final) * (1 + math.cos(math.pi * p)))

    def __repr__(self) -> str:
        return f"CosineSchedule({self.initial}, {self.final}, warmup_ratio={self.warmup_ratio})"


SCHEDULE_TYPES = ("constant", "linear", "cosine")


def make_schedule(
    value: float | Schedule, schedule_type: SchedulerType | str = "constant", warmup_ratio: float = 0.0
) -> Schedule:
    """Turn a float and a TRL-style ``lr_scheduler_type`` into a schedule; a callable passes through.

    :param value: a float (the peak value) or a ready schedule.
    :param schedule_type: ``"constant"``, ``"linear"`` (to 0) or ``"cosine"`` (to 0).
    :param warmup_ratio: fraction of training spent on a linear warm-up from 0.
    """
    if callable(value):
        return value
    if not 0.0 <= warmup_ratio < 1.0:
        raise ValueError(f"warmup_ratio must be in [0, 1), got {warmup_ratio}")
    if schedule_type == "constant":
        return ConstantSchedule(value) if warmup_ratio == 0 else LinearSchedule(value, value, warmup_ratio)
    if schedule_type == "linear":
        return LinearSchedule(value, 0.0, warmup_ratio)
    if schedule_type == "cosine":
        return CosineSchedule(value, 0.0, warmup_ratio)
    raise ValueError(f"lr_scheduler_type={schedule_type!r} is not supported; choose one of {', '.join(SCHEDULE_TYPES)}")
