"""Central finite differences, the reference the loss tests compare autograd against."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch


def central_differences(
    loss_at: Callable[[torch.Tensor], torch.Tensor], theta: torch.Tensor, h: float = 1e-6
) -> torch.Tensor:
    """``d loss / d theta`` entry by entry: ``(loss(theta + h e) - loss(theta - h e)) / 2h``."""
    numeric = torch.zeros_like(theta)
    for idx in np.ndindex(*theta.shape):
        plus, minus = theta.clone(), theta.clone()
        plus[idx] += h
        minus[idx] -= h
        numeric[idx] = (loss_at(plus).item() - loss_at(minus).item()) / (2 * h)
    return numeric
