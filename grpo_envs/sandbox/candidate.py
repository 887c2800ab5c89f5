"""The candidate's side of the channel: load the program, then answer the harness.

This runs inside the fully isolated process, after every layer is in place, and is the
only code there besides the candidate's own. The candidate can rewrite any of it (it shares
the interpreter); it would only ever hurt itself: verdicts are decided by the harness, in
another process, from the values this side sends back.
"""

from __future__ import annotations

import builtins
import io
import os
import resource
import sys
from typing import Any

from grpo_envs.sandbox import codec
from grpo_envs.sandbox.channel import ChannelClosed, read_json, write_json

#: Characters of an exception message sent back to the harness.
MAX_MESSAGE = 500
#: Bytes of standard output captured per stdin/stdout test case; writing more raises.
MAX_CAPTURED_OUTPUT = 4 * 1024**2


def describe(exc: BaseException) -> tuple[str, str]:
    """``(class name, message)`` of an exception, safe against hostile ``__str__``."""
    name = type(exc).__name__
    try:
        message = str(exc)
    except BaseException:  # noqa: BLE001 - the candidate controls __str__
        message = "<unprintable>"
    if isinstance(exc, SyntaxError) and exc.lineno is not None:
        message = f"{exc.msg} (line {exc.lineno})"
    return (name if type(name) is str else "Exception"), message[:MAX_MESSAGE]


class _BoundedOutput(io.BytesIO):
    """An in-memory stdout that refuses to grow past :data:`MAX_CAPTURED_OUTPUT`."""

    def write(self, data: Any) -> int:
        if self.tell() + len(data) > MAX_CAPTURED_OUTPUT:
            raise OSError(27, "output limit exceeded")  # EFBIG
        return super().write(data)


def _flush_stdio() -> None:
    """Push the program's buffered prints to its stdout/stderr files, which the sandbox reads
    as soon as the verdict is in (the process is then killed, never flushed at exit)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001 - the program may have replaced or closed them
            pass


def _run_as_main(code: Any, stdin_text: str | None) -> tuple[str | None, list[str] | None]:
    """Execute ``code`` as ``__main__``; returns (captured stdout or None, error or None)."""
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    if stdin_text is None:  # a plain run: real stdio
        try:
            exec(code, namespace)
        except SystemExit as exc:
            if exc.code not in (None, 0):
                return None, ["SystemExit", f"exit code {exc.code!r}"[:MAX_MESSAGE]]
        except BaseException as exc:  # noqa: BLE001
            return None, list(describe(exc))
        return None, None
    raw = _BoundedOutput()
    stdout = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", write_through=True)
    stdin = io.TextIOWrapper(io.BytesIO(stdin_text.encode("utf-8", "replace")), encoding="utf-8")
    saved = sys.stdin, sys.stdout
    sys.stdin, sys.stdout = stdin, stdout
    error = None
    try:
        exec(code, namespace)
    except SystemExit as exc:  # judges accept exit() after printing the answer
        if exc.code not in (None, 0):
            error = ["SystemExit", f"exit code {exc.code!r}"[:MAX_MESSAGE]]
    except BaseException as exc:  # noqa: BLE001
        error = list(describe(exc))
    finally:
        sys.stdin, sys.stdout = saved
        try:
            stdout.flush()
        except BaseException:  # noqa: BLE001
            pass
    return raw.getvalue().decode("utf-8", "replace"), error


def serve(req_fd: int, resp_fd: int) -> None:
    """Answer the harness until it closes the request pipe.

    Requests: ``["load", program, mode, cpu_seconds]`` first (mode ``function | io | run``;
    ``cpu_seconds`` null only in :func:`rehearse`), then ``["call", name, args_tree,
    kwargs_tree]``, ``["batch", [[name, args_tree, kwargs_tree], ...]]`` (one reply per call,
    in order) or ``["mains", [stdin_text, ...]]`` (run as ``__main__`` once per input, one
    reply each).
    """
    try:
        _, program, mode, cpu_seconds = read_json(req_fd)
    except (ChannelClosed, ValueError, TypeError):
        return
    if cpu_seconds is not None:  # this process was forked ahead of time: now it learns the job's CPU budget
        try:
            _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
            cpu = int(cpu_seconds) if hard == resource.RLIM_INFINITY else min(int(cpu_seconds), hard)
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        except (ValueError, OSError):
            pass
    try:
        code = compile(program, "<candidate>", "exec")
    except BaseException as exc:  # noqa: BLE001 - SyntaxError, ValueError (NUL bytes), MemoryError
        write_json(resp_fd, ["load_failed", *describe(exc)])
        return
    namespace: dict[str, Any] = {"__name__": "__candidate__", "__builtins__": builtins}
    if mode == "run":
        _, error = _run_as_main(code, None)
        _flush_stdio()
        write_json(resp_fd, ["ran", None, error])
        return
    if mode == "function":
        try:
            exec(code, namespace)
        except BaseException as exc:  # noqa: BLE001
            _flush_stdio()
            write_json(resp_fd, ["load_failed", *describe(exc)])
            return
        _flush_stdio()
        names = [k for k, v in list(namespace.items()) if type(k) is str and not k.startswith("__") and callable(v)]
        write_json(resp_fd, ["loaded", names])
    else:
        write_json(resp_fd, ["loaded", []])
    while True:
        try:
            request = read_json(req_fd)
        except ChannelClosed:
            return
        if request[0] == "mains":
            for stdin_text in request[1]:
                output, error = _run_as_main(code, stdin_text)
                write_json(resp_fd, ["ran", output, error])
            continue
        for name, args_tree, kwargs_tree in request[1] if request[0] == "batch" else [request[1:]]:
            try:
                function = namespace[name]
                args = codec.from_tree(args_tree)
                kwargs = codec.from_tree(kwargs_tree)
                value = function(*args, **kwargs)
                reply = ["ok", codec.to_tree(value)]
            except BaseException as exc:  # noqa: BLE001 - reported to the harness as the test's error
                reply = ["raise", *describe(exc)]
            _flush_stdio()
            try:
                write_json(resp_fd, reply)
            except (ValueError, RecursionError):  # e.g. an int too long to print
                write_json(resp_fd, ["ok", codec.UNENCODABLE])


#: What :func:`rehearse` runs: a HumanEval-shaped program (a typed import from a preloaded
#: module, a docstring, a function) whose calls return each kind of value the codec encodes
#: and raise once; and a stdin/stdout one.
_REHEARSAL_FUNCTION = (
    "from typing import List\n"
    "def f(xs: List[int], key=None) -> List[int]:\n"
    '    """Sort ``xs``; raise on a negative key."""\n'
    "    if key is not None and key < 0:\n"
    "        raise ValueError(key)\n"
    "    return sorted(xs)\n"
    "def g(text: str):\n"
    "    return {text: (len(text), 0.5, None, True)}\n"
)
_REHEARSAL_MAIN = "print(sum(int(x) for x in input().split()))\n"
_REHEARSAL_CALLS = [
    ["f", [[3, 1, 2]], {}],
    ["f", [[2, 1]], {"key": -1}],
    ["g", ["abc"], {}],
    ["missing", [], {}],
]


def rehearse(times: int = 16) -> None:
    """Run this side of the channel ``times`` times per mode, over pipes, in the calling process.

    Called by the fork server once, before it forks any candidate process. CPython 3.11
    specialises a function's bytecode in place after its first few calls, and fills its
    caches (type attributes, the AST node types ``compile`` creates on its first use) as it
    goes: each of those writes, made first in a candidate process, costs it a copy-on-write
    page fault and the work itself, for every job. Made here, every candidate process starts
    warm (on HumanEval, 5-8% more executions per second).
    """
    jobs = [
        (["load", _REHEARSAL_FUNCTION, "function", None], ["batch", _REHEARSAL_CALLS], 1 + len(_REHEARSAL_CALLS)),
        (["load", _REHEARSAL_MAIN, "io", None], ["mains", ["1 2", "3 4"]], 3),
        (["load", "x = 1\n", "run", None], None, 1),
    ]
    for _ in range(times):
        for load, calls, replies in jobs:
            req_r, req_w = os.pipe()
            resp_r, resp_w = os.pipe()
            try:
                write_json(req_w, load)
                if calls is not None:
                    write_json(req_w, calls)
                os.close(req_w)
                req_w = -1
                serve(req_r, resp_w)
                for _ in range(replies):
                    read_json(resp_r)
            finally:
                for fd in (req_r, req_w, resp_r, resp_w):
                    if fd >= 0:
                        os.close(fd)
