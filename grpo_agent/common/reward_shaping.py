"""Reward shaping applied to a completion's reward before advantages are computed.

- :func:`overlong_penalty`: DAPO's soft overlong punishment (Yu et al. 2025, "DAPO",
  arXiv:2503.14476, section 3.4; verl's ``overlong_buffer``): nothing up to
  ``max_length - buffer_len`` tokens, then a penalty growing linearly to ``-penalty_factor``
  at ``max_length``, so the policy learns to finish before the limit instead of being cut off.
"""

from __future__ import annotations

import numpy as np


def overlong_penalty(lengths: np.ndarray, max_length: int, buffer_len: int, penalty_factor: float = 1.0) -> np.ndarray:
    """``min(0, (max_length - buffer_len - L) / buffer_len) * penalty_factor`` per completion.

    :param lengths: completion lengths in tokens.
    :param max_length: the generation limit (the policy's ``max_completion_length``).
    :param buffer_len: the ramp's length in tokens, ``1 <= buffer_len <= max_length``.
    :param penalty_factor: the penalty at ``max_length`` (DAPO: 1).
    :return: penalties, each in ``[-penalty_factor, 0]``.
    """
    if not 1 <= buffer_len <= max_length:
        raise ValueError(f"overlong_buffer_len must be in [1, max_length={max_length}], got {buffer_len}")
    if penalty_factor < 0:
        raise ValueError(f"overlong_penalty_factor must be >= 0, got {penalty_factor}")
    expected = max_length - buffer_len
    lengths = np.minimum(np.asarray(lengths, dtype=np.float64), max_length)
    return np.minimum(0.0, (expected - lengths) / buffer_len) * penalty_factor
