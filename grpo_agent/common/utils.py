"""Seeding and device helpers."""

from __future__ import annotations

import random

import numpy as np
import torch


def get_device(device: torch.device | str = "auto") -> torch.device:
    """``"auto"`` picks CUDA when available, else the CPU; anything else goes to ``torch.device``."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={device} was requested but CUDA is not available; use device='cpu' or 'auto'")
    return device


def set_random_seed(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global RNGs (as stable-baselines3 does)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
