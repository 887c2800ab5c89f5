"""Run a pure function in a child process that a hard wall-clock timeout can kill.

Parsing and simplifying untrusted text can hang or eat memory (sympy on ``9^{9^{9}}``,
Python on ``10**10**10``). ``signal.alarm`` cannot help: it works only in the main thread,
replaces the caller's own alarm, and cannot interrupt C code that never returns to the
interpreter. So the work runs in a persistent worker process; when a call overruns, the
worker is killed (SIGKILL) and a fresh one is started in the background for the next call.

The worker is a fresh interpreter (``python -m grpo_envs.verify.worker``) talking over a
socketpair, never a fork: forking a parent that has torch (or any threaded library) loaded can
deadlock the child. Nor is it multiprocessing's ``spawn``, which re-runs the user's main script
in the child: a script without an ``if __name__ == "__main__":`` guard would start its own
training run inside the verifier.
"""

from __future__ import annotations

import atexit
import importlib
import os
import signal
import socket
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

#: Address-space cap for a worker (bytes): big enough for sympy, small enough that a
#: runaway ``10**10**8``-style computation fails with MemoryError instead of swapping the host.
DEFAULT_MEMORY_LIMIT = 2 * 1024**3


class WorkerTimeout(TimeoutError):
    """The call did not finish within its wall-clock timeout; the worker was killed."""


class WorkerError(RuntimeError):
    """The function raised inside the worker (its traceback text is in ``args[0]``),
    or the worker died without answering."""


def _worker_main(conn: Connection, preload: Sequence[str], memory_limit: int | None) -> None:
    # Ctrl-C in a terminal reaches the whole process group; the parent decides what it means.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if memory_limit:
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
        except (ImportError, ValueError, OSError):
            pass  # not Linux, or the hard limit is lower already: run without the cap
    for name in preload:
        importlib.import_module(name)
    conn.send(("ready", None))
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        module_name, function_name, args = message
        try:
            function = getattr(importlib.import_module(module_name), function_name)
            conn.send(("ok", function(*args)))
        except MemoryError:
            conn.send(("memory", "MemoryError"))
        except BaseException:  # noqa: BLE001 - the caller decides what a failure means
            conn.send(("raised", traceback.format_exc(limit=5)))


class TimeoutWorker:
    """A single child process that runs module-level functions under a hard timeout.

    Thread-safe (calls are serialised). The child is started lazily on the first call and
    restarted after a timeout or crash, so a caller can keep using the same worker forever.

    :param preload: modules to import in the child before the first call (e.g. ``["sympy"]``),
        so that the import cost is paid at start-up and not inside the first timeout.
    :param memory_limit: RLIMIT_AS for the child, in bytes; None for no limit.
    :param start_timeout: seconds to wait for a freshly started child to finish its imports.

    Example::

        >>> from grpo_envs.verify.worker import TimeoutWorker
        >>> worker = TimeoutWorker()
        >>> worker.call(pow, 2, 10, timeout=5.0)
        1024
        >>> worker.close()
    """

    def __init__(
        self,
        preload: Sequence[str] = (),
        memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
        start_timeout: float = 60.0,
    ) -> None:
        self.preload = tuple(preload)
        self.memory_limit = memory_limit
        self.start_timeout = start_timeout
        self._lock = threading.Lock()
        self._process: Any = None
        self._conn: Connection | None = None
        self._ready = False
        atexit.register(self.close)

    # -- lifecycle -------------------------------------------------------------------------

    def _start(self) -> None:
        parent_sock, child_sock = socket.socketpair()
        command = [sys.executable, "-m", "grpo_envs.verify.worker", str(child_sock.fileno())]
        command += ["--memory-limit", str(self.memory_limit or 0), *self.preload]
        # The child must import whatever the caller can (functions are sent by module name).
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        # BLAS pools reserve address space per core: under RLIMIT_AS on a many-core host numpy
        # could fail to import. Verification is single-threaded work anyway.
        env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        with child_sock:
            process = subprocess.Popen(command, pass_fds=[child_sock.fileno()], env=env, close_fds=True)
        self._process, self._conn, self._ready = process, Connection(parent_sock.detach()), False

    def _wait_ready(self) -> None:
        assert self._conn is not None
        if self._ready:
            return
        if not self._conn.poll(self.start_timeout):
            self._kill()
            raise WorkerError(f"verifier worker did not start within {self.start_timeout} s")
        try:
            tag, _ = self._conn.recv()
        except EOFError as exc:
            self._kill()
            raise WorkerError("verifier worker died while starting") from exc
        self._ready = tag == "ready"

    def _kill(self) -> None:
        process, conn = self._process, self._conn
        self._process, self._conn, self._ready = None, None, False
        if process is not None and process.poll() is None:
            process.kill()
        if process is not None:
            process.wait(timeout=5.0)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        """Stop the child process. The worker can still be used: the next call restarts it."""
        with self._lock:
            if self._conn is not None and self._process is not None and self._process.poll() is None:
                try:
                    self._conn.send(None)
                    self._process.wait(timeout=1.0)
                except (OSError, subprocess.TimeoutExpired):
                    pass
            self._kill()

    @property
    def pid(self) -> int | None:
        """The child's pid, or None when no child is running."""
        return None if self._process is None else self._process.pid

    # -- calls -----------------------------------------------------------------------------

    def call(self, function: Callable[..., Any], *args: Any, timeout: float) -> Any:
        """Run ``function(*args)`` in the child and return its result.

        ``function`` must be importable by name (a module-level function) and ``args`` and
        the result must pickle.

        :raises WorkerTimeout: the call overran ``timeout`` seconds; the child was killed.
        :raises MemoryError: the child ran out of its address-space limit.
        :raises WorkerError: the function raised (traceback in the message) or the child died.
        """
        module_name = getattr(function, "__module__", None)
        function_name = getattr(function, "__qualname__", "")
        if not module_name or "." in function_name or "<" in function_name:
            raise TypeError(f"{function!r} is not a module-level function; the worker cannot import it")
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._kill()
                self._start()
            self._wait_ready()
            assert self._conn is not None
            try:
                self._conn.send((module_name, function_name, args))
                answered = self._conn.poll(timeout)
            except (OSError, BrokenPipeError) as exc:
                self._kill()
                raise WorkerError("verifier worker died") from exc
            if not answered:
                self._kill()
                self._start()  # warm a replacement now so the next call does not wait for imports
                raise WorkerTimeout(f"call to {function_name} exceeded {timeout} s and was killed")
            try:
                tag, value = self._conn.recv()
            except EOFError as exc:
                self._kill()
                raise WorkerError("verifier worker died during the call (killed by the OS?)") from exc
        if tag == "ok":
            return value
        if tag == "memory":
            raise MemoryError("verifier worker ran out of memory")
        raise WorkerError(value)


if __name__ == "__main__":
    # The child side: ``python -m grpo_envs.verify.worker FD --memory-limit N [MODULE ...]``.
    fd, _, limit, *modules = sys.argv[1:]
    _worker_main(Connection(int(fd)), modules, int(limit) or None)
