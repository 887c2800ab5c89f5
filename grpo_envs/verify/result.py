"""The verdict every verifier returns, so that every env explains its reward the same way."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Reasons shared by all verifiers. Verifiers may add their own (e.g. ``unknown_function``);
#: these are the ones every consumer can rely on.
CORRECT = "correct"
WRONG = "wrong"
PARSE_FAILED = "parse_failed"
TIMEOUT = "timeout"
ERROR = "error"


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of checking one completion against one reference.

    :param reward: the scalar reward, usually 1.0 or 0.0 (a fraction for partial credit).
    :param correct: whether the completion is fully correct.
    :param reason: why: ``correct | wrong | parse_failed | timeout | error`` or a verifier's own.
    :param parsed: what was extracted from the completion (e.g. the answer string), or None.
    :param details: verifier-specific explanation (JSON-serialisable), e.g. per-test outcomes.
    """

    reward: float
    correct: bool
    reason: str
    parsed: Any = None
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fail(cls, reason: str, parsed: Any = None, **details: Any) -> VerifyResult:
        """A zero-reward verdict with a reason and optional details."""
        return cls(reward=0.0, correct=False, reason=reason, parsed=parsed, details=dict(details))

    @classmethod
    def success(cls, parsed: Any = None, **details: Any) -> VerifyResult:
        """A full-reward verdict."""
        return cls(reward=1.0, correct=True, reason=CORRECT, parsed=parsed, details=dict(details))
