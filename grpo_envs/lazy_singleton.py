"""One process-wide instance of something costly (a worker process, a sandbox), built on first use.

Verifiers and tools share a worker per process rather than one per env: starting one costs
tens of milliseconds and memory, and most programs never need it at all, hence built lazily.

Example::

    >>> calls = []
    >>> shared = LazySingleton(lambda: calls.append(1) or object())
    >>> shared.get() is shared.get(), len(calls)
    (True, 1)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class LazySingleton(Generic[T]):
    """Builds its instance with ``factory()`` on the first :meth:`get`, once, even under threads.

    :param factory: what builds the instance.
    """

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._instance: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        """The instance, built now if this is the first call."""
        with self._lock:
            if self._instance is None:
                self._instance = self._factory()
            return self._instance
