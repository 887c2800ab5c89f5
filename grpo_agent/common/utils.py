"""Seeding, device and argument-checking helpers."""

from __future__ import annotations

import random
from typing import Any, get_args

import numpy as np
import torch


def get_device(device: torch.device | str = "auto") -> torch.device:
    """The one device resolver: ``"auto"`` picks CUDA when available, else the CPU; anything
    else goes to ``torch.device``, refusing CUDA on a machine where torch sees no GPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} was asked for but torch sees no CUDA GPU; use device='cpu' or 'auto'")
    return resolved


def set_random_seed(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global RNGs (as stable-baselines3 does)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def check_choice(name: str, value: Any, literal: object) -> None:
    """Raise a ValueError naming the choices when ``value`` is not one of the ``Literal`` type's."""
    choices = get_args(literal)
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not supported; choose one of {', '.join(map(str, choices))}")
