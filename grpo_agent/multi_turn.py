"""Moved to :mod:`grpo_agent.common.multi_turn`; this alias warns and will be removed."""

from __future__ import annotations

import warnings
from typing import Any

from grpo_agent.common import multi_turn as _moved


def __getattr__(name: str) -> Any:
    value = getattr(_moved, name)
    warnings.warn(
        f"grpo_agent.multi_turn.{name} moved to grpo_agent.common.multi_turn.{name}", DeprecationWarning, stacklevel=2
    )
    return value
