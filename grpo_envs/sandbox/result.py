"""What one sandboxed execution returns: a status, per-test outcomes, output and active layers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Job statuses.
#: ``ok``: the program loaded and every test ran to completion (each one passed or failed);
#: ``failed``: the program did not load (syntax error, exception at import time) or its process
#: ended before all tests ran (``sys.exit``/``os._exit``);
#: ``timeout``: the wall-clock limit was hit; ``memory``: the program ran out of its memory limit;
#: ``killed``: the program was killed by a signal (output/file size limit, CPU limit, crash);
#: ``error``: the sandbox or the tests themselves failed (never the candidate's doing).
OK = "ok"
FAILED = "failed"
TIMEOUT = "timeout"
MEMORY = "memory"
KILLED = "killed"
ERROR = "error"
STATUSES = (OK, FAILED, TIMEOUT, MEMORY, KILLED, ERROR)

#: Per-test outcomes.
PASSED = "passed"
TEST_FAILED = "failed"  # an assertion in the test failed, or the output differed
TEST_ERROR = "error"  # the candidate raised, or its process died during the test
NOT_RUN = "not_run"


@dataclass(frozen=True)
class TestOutcome:
    """The outcome of one test.

    :param index: position of the test in the job's test list.
    :param status: ``passed | failed | error | not_run``.
    :param message: why it failed (assertion text, exception type and message), truncated.
    :param error_type: the exception's class name when the candidate raised, else None.
    """

    index: int
    status: str
    message: str = ""
    error_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable view."""
        return {"index": self.index, "status": self.status, "message": self.message, "error_type": self.error_type}


@dataclass(frozen=True)
class SandboxResult:
    """The outcome of one sandboxed job.

    :param status: one of :data:`STATUSES`.
    :param tests: one :class:`TestOutcome` per test of the job (``not_run`` when never reached).
    :param stdout: what the program wrote to its file descriptor 1, truncated, decoded as UTF-8
        with replacement characters (non-UTF-8 output cannot break the caller).
    :param stderr: the same for file descriptor 2.
    :param message: a one-line explanation of the status (e.g. the SyntaxError, the signal).
    :param error_type: the exception class name when the program failed to load, else None.
    :param exit_code: the program process's exit code when it exited by itself, else None.
    :param signal: the name of the signal that ended the program process, if any.
    :param layers: which isolation layers were active, by name (see :mod:`grpo_envs.sandbox`).
    :param elapsed: wall-clock seconds the job took inside the sandbox (not deterministic).
    """

    status: str
    tests: tuple[TestOutcome, ...] = ()
    stdout: str = ""
    stderr: str = ""
    message: str = ""
    error_type: str | None = None
    exit_code: int | None = None
    signal: str | None = None
    layers: Mapping[str, Any] = field(default_factory=dict)
    elapsed: float = 0.0

    @property
    def num_tests(self) -> int:
        """How many tests the job has."""
        return len(self.tests)

    @property
    def num_passed(self) -> int:
        """How many tests passed (confirmed by the harness, never by the program's output)."""
        return sum(t.status == PASSED for t in self.tests)

    @property
    def all_passed(self) -> bool:
        """True when the job ran to completion and every test passed (False for zero tests)."""
        return self.status == OK and bool(self.tests) and self.num_passed == len(self.tests)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable view (without ``elapsed``, which is not deterministic)."""
        return {
            "status": self.status,
            "tests": [t.to_dict() for t in self.tests],
            "stdout": self.stdout,
            "stderr": self.stderr,
            "message": self.message,
            "error_type": self.error_type,
            "exit_code": self.exit_code,
            "signal": self.signal,
            "layers": dict(self.layers),
        }
