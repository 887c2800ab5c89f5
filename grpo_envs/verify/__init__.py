"""Pure, side-effect-free checkers: each turns (completion, reference) into a VerifyResult.

The math verifier's public entry is :func:`verify_math_answer` (extract the final answer from a
completion, then compare it with the reference); :func:`check_reference` says whether a
reference can be parsed at all.

Example::

    >>> from grpo_envs.verify import verify_math_answer
    >>> verify_math_answer("so $x = \\\\boxed{\\\\dfrac13}$", "1/3").reward
    1.0
"""

from grpo_envs.verify.math import check_math_answer, extract_answer, verify_math_answer
from grpo_envs.verify.math_reference import BadReferenceError, check_reference, check_references
from grpo_envs.verify.result import CORRECT, ERROR, PARSE_FAILED, TIMEOUT, WRONG, VerifyResult

__all__ = [
    "CORRECT",
    "ERROR",
    "PARSE_FAILED",
    "TIMEOUT",
    "WRONG",
    "BadReferenceError",
    "VerifyResult",
    "check_math_answer",
    "check_reference",
    "check_references",
    "extract_answer",
    "verify_math_answer",
]
