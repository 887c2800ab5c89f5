"""What the sandbox is asked to run: a candidate program and the tests that judge it.

Tests never run inside the candidate's process. A trusted harness process holds them and
talks to the candidate's process over pipes: for :class:`FunctionTests` it calls the
candidate's functions by name with plain-data arguments and compares the returned values
itself; for :class:`IOTests` it sends each stdin text and compares the captured stdout. The
candidate therefore never sees a test, an expected value or a reference solution, and nothing
it does to its own interpreter (patching ``assert``, ``sys.exit``, an ``__eq__`` that is
always true) can change a verdict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

#: Default wall-clock limit of one job, in seconds. HumanEval's reference harness uses 3 s.
DEFAULT_TIMEOUT = 3.0


@dataclass(frozen=True)
class FunctionTests:
    """Assert-style tests (HumanEval, MBPP) run by the trusted harness.

    :param tests: Python snippets, one per test; each one passes when it runs without raising.
        They run in order in one namespace (a snippet may define names for later ones).
    :param setup: trusted Python run first in the harness's namespace: imports, helper
        functions the tests use (for HumanEval, the prompt itself), constants.
    :param bind: names to bind in that namespace to the candidate's functions, e.g.
        ``{"candidate": "add"}``. Besides these, every function the candidate defines at top
        level is bound under its own name unless ``setup`` already defined it (so tests of the
        form ``assert add(1, 2) == 3`` work, while helpers from the prompt stay trusted).

    Calls cross a process boundary: arguments and return values must be plain data (None,
    bool, int, float, complex, str, bytes, and lists, tuples, sets, frozensets and dicts of
    them). Any other returned object arrives as an opaque value that equals nothing.
    """

    tests: tuple[str, ...]
    setup: str = ""
    bind: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class IOTests:
    """Standard-input / standard-output tests (APPS, Codeforces style).

    :param cases: ``(stdin, expected_stdout)`` pairs; the program runs once per case as
        ``__main__`` with ``sys.stdin``/``sys.stdout`` bound to in-memory text streams.
    :param compare: ``"tokens"`` (default: whitespace-separated tokens must match),
        ``"lines"`` (lines must match after stripping trailing whitespace) or ``"exact"``.
    """

    cases: tuple[tuple[str, str], ...]
    compare: str = "tokens"


Tests = FunctionTests | IOTests | None


@dataclass(frozen=True)
class SandboxJob:
    """One program to run, with its tests.

    :param program: the candidate's Python source.
    :param tests: :class:`FunctionTests`, :class:`IOTests`, or None to simply run the program
        as ``__main__`` (status ``ok`` when it finishes without raising).
    :param timeout: wall-clock limit for the whole job, in seconds.
    :param stop_on_failure: stop at the first test that does not pass (the rest are reported
        ``not_run``); saves time when only all-pass matters.
    """

    program: str
    tests: Tests = None
    timeout: float = DEFAULT_TIMEOUT
    stop_on_failure: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.program, str):
            raise TypeError(f"program must be a str of Python source, got {type(self.program).__name__}")
        if not self.timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {self.timeout!r}")
        if isinstance(self.tests, IOTests) and self.tests.compare not in ("tokens", "lines", "exact"):
            raise ValueError(f"IOTests.compare must be 'tokens', 'lines' or 'exact', got {self.tests.compare!r}")

    @property
    def num_tests(self) -> int:
        """How many tests the job has (0 for a plain run)."""
        if isinstance(self.tests, FunctionTests):
            return len(self.tests.tests)
        if isinstance(self.tests, IOTests):
            return len(self.tests.cases)
        return 0
