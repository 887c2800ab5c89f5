"""Check that reference answers can be read at all, before any policy is scored against them.

A reference that neither parser reads would score 0 for every completion (reason ``error``):
a task that silently teaches nothing. :func:`check_references` finds such references in one
pass (plain numbers and text answers in the caller's process; the rest in the verifier worker,
in batches, under the worker's hard timeout), and caches every verdict, so that a task source
can be checked when it is read and an env can check a lazily generated task on first use.

Example::

    >>> from grpo_envs.verify.math_reference import check_reference
    >>> check_reference("(\\\\frac{3}{5}, \\\\frac{8}{3}]") is None
    True
    >>> check_reference("\\\\frac{1}{")
    'neither parser reads it (ours: the answer ends too early; math-verify found no expression)'
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from grpo_envs.verify.math import get_math_worker, parse_plain_number, precheck_answer
from grpo_envs.verify.math_forms import text_answer
from grpo_envs.verify.math_normalize import normalize_answer
from grpo_envs.verify.worker import TimeoutWorker, WorkerError, WorkerTimeout

#: Seconds one reference may take to parse; a reference slower than this is reported as bad
#: (no honest reference needs more than a few hundred milliseconds).
DEFAULT_REFERENCE_TIMEOUT = 5.0
#: References sent to the worker per round trip.
BATCH_SIZE = 64
#: Verdicts remembered per process (reference text -> problem or None).
CACHE_SIZE = 100_000


class BadReferenceError(ValueError):
    """A task's reference answer cannot be parsed, so no completion could ever score on it."""


_cache: dict[str, str | None] = {}
_cache_lock = threading.Lock()


def _cheap_problem(reference: str) -> tuple[bool, str | None]:
    """``(decided, problem)`` from string checks alone: empty, too long, a plain number, text."""
    if not reference.strip():
        return True, "the reference is empty"
    refused = precheck_answer(reference)
    if refused is not None:
        return True, refused.replace("answer", "reference", 1)
    if parse_plain_number(normalize_answer(reference)) is not None or text_answer(reference) is not None:
        return True, None
    return False, None


def _remember(reference: str, problem: str | None) -> None:
    with _cache_lock:
        if len(_cache) >= CACHE_SIZE:
            _cache.clear()
        _cache[reference] = problem


def _problems_in_worker(references: list[str]) -> list[str | None]:
    """Runs inside the worker (sympy and math-verify are imported there only)."""
    from grpo_envs.verify.math_structured import reference_problems

    return reference_problems(references)


def _in_worker(batch: list[str], timeout: float, worker: TimeoutWorker) -> list[str | None]:
    try:
        return list(worker.call(_problems_in_worker, batch, timeout=timeout * len(batch)))
    except WorkerTimeout:
        if len(batch) == 1:
            return [f"parsing it took longer than {timeout} s"]
        return [_in_worker([reference], timeout, worker)[0] for reference in batch]
    except (WorkerError, MemoryError) as exc:
        if len(batch) == 1:
            return [f"parsing it crashed the verifier ({type(exc).__name__})"]
        return [_in_worker([reference], timeout, worker)[0] for reference in batch]


def check_references(
    references: Sequence[str], *, timeout: float = DEFAULT_REFERENCE_TIMEOUT, worker: TimeoutWorker | None = None
) -> list[str | None]:
    """For each reference, why it cannot be parsed (one sentence), or None when it can.

    :param references: reference answers (plain text or LaTeX).
    :param timeout: seconds each reference may take to parse in the worker.
    :param worker: the worker to use; the shared math worker by default.
    """
    results: list[str | None] = [None] * len(references)
    pending: dict[str, list[int]] = {}
    for i, reference in enumerate(references):
        if not isinstance(reference, str):
            results[i] = f"the reference is a {type(reference).__name__}, not a str"
            continue
        if reference in _cache:
            results[i] = _cache[reference]
            continue
        decided, problem = _cheap_problem(reference)
        if decided:
            results[i] = problem
            _remember(reference, problem)
        else:
            pending.setdefault(reference, []).append(i)
    texts = list(pending)
    worker = worker if worker is not None else get_math_worker() if texts else None
    for start in range(0, len(texts), BATCH_SIZE):
        batch = texts[start : start + BATCH_SIZE]
        assert worker is not None
        for reference, problem in zip(batch, _in_worker(batch, timeout, worker), strict=True):
            _remember(reference, problem)
            for i in pending[reference]:
                results[i] = problem
    return results


def check_reference(
    reference: str, *, timeout: float = DEFAULT_REFERENCE_TIMEOUT, worker: TimeoutWorker | None = None
) -> str | None:
    """Why ``reference`` cannot be parsed (one sentence), or None when it can. See :func:`check_references`."""
    return check_references([reference], timeout=timeout, worker=worker)[0]
