"""Pure, side-effect-free checkers: each turns (completion, reference) into a VerifyResult.

The math verifier's public entry is :func:`verify_math_answer` (extract the final answer from a
completion, then compare it with the reference); :func:`check_reference` says whether a
reference can be parsed at all. Both are imported on first use (``import grpo_envs.verify``
stays cheap, and the verifier worker's ``python -m grpo_envs.verify.worker`` finds its module
not yet imported).

Example::

    >>> from grpo_envs.verify import verify_math_answer
    >>> verify_math_answer("so $x = \\\\boxed{\\\\dfrac13}$", "1/3").reward
    1.0
"""

from __future__ import annotations

import importlib
from typing import Any

from grpo_envs.verify.result import CORRECT, ERROR, PARSE_FAILED, TIMEOUT, WRONG, VerifyResult

_LAZY = {
    "verify_math_answer": "grpo_envs.verify.math",
    "check_math_answer": "grpo_envs.verify.math",
    "extract_answer": "grpo_envs.verify.math",
    "check_reference": "grpo_envs.verify.math_reference",
    "check_references": "grpo_envs.verify.math_reference",
    "BadReferenceError": "grpo_envs.verify.math_reference",
}

__all__ = ["CORRECT", "ERROR", "PARSE_FAILED", "TIMEOUT", "WRONG", "VerifyResult", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'grpo_envs.verify' has no attribute {name!r}")
