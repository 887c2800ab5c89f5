"""The trusted side of a job: runs the tests and calls into the candidate's process.

Runs in its own process, forked from the zygote (never from the candidate's ancestors), so
the tests and expected values exist only here. The candidate's functions are bound in the
tests' namespace as :class:`CandidateFunction` proxies: a call sends the arguments over a
pipe and rebuilds the returned value with :mod:`~grpo_envs.sandbox.codec` (plain data,
exact types). A test passes only when its code ran to the end here; every report about it
is written by this process on a pipe the candidate does not hold.
"""

from __future__ import annotations

import ast
import builtins
import json
import math
import os
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

from grpo_envs.sandbox import codec
from grpo_envs.sandbox.channel import ChannelClosed, FrameReader, write_json
from grpo_envs.sandbox.job import FunctionTests, IOTests, SandboxJob
from grpo_envs.sandbox.result import NOT_RUN, PASSED, TEST_ERROR, TEST_FAILED

MAX_MESSAGE = 500


class CandidateGone(BaseException):
    """The candidate's process ended or broke the protocol. A BaseException so that a test's
    own ``except Exception`` cannot swallow it."""


class CandidateError(Exception):
    """The candidate's code raised; ``type_name`` is its exception class name.

    Raised as a subclass of the built-in exception of that name when one exists, so tests
    such as ``try: f(-1) except ValueError: ...`` work unchanged.
    """

    type_name: str = "Exception"


_ERROR_CLASSES: dict[str, type] = {}


def _candidate_error(type_name: str, message: str) -> CandidateError:
    cls = _ERROR_CLASSES.get(type_name)
    if cls is None:
        base = getattr(builtins, type_name, None)
        if isinstance(base, type) and issubclass(base, Exception) and base is not Exception:
            try:
                cls = type(type_name, (CandidateError, base), {})
            except TypeError:  # incompatible layout
                cls = CandidateError
        else:
            cls = CandidateError
        _ERROR_CLASSES[type_name] = cls
    error = cls(f"{type_name}: {message}")
    error.type_name = type_name
    return error


class Link:
    """The harness's end of the pipes to the candidate's process.

    Calls can be *prefetched*: sent in one batch before the tests run, answered one frame
    each, in order, as the program computes them. The tests then find most results already
    waiting in the pipe instead of paying two process wake-ups per call, which on a busy
    machine cost far more than the call itself.
    """

    def __init__(self, req_fd: int, resp_fd: int, before_wait: Callable[[], None] | None = None) -> None:
        self.req_fd, self.resp_fd = req_fd, resp_fd
        self.before_wait = before_wait  # called before blocking on the program's process
        self._reader = FrameReader()  # bytes read from the pipe, not yet parsed into frames
        self._frames: deque[bytes] = deque()  # frames parsed, not yet used
        self._pending: deque[str] = deque()  # keys of batch replies not read yet, in order
        self._unread: Counter[str] = Counter()
        self._ready: dict[str, deque[list[Any]]] = {}  # replies read but not used yet

    def _send(self, message: list[Any]) -> None:
        try:
            write_json(self.req_fd, message)
        except OSError as exc:
            raise CandidateGone(f"the program's process ended ({exc})") from None

    def _next_frame(self) -> bytes:
        # One read usually brings several pipelined replies: parse them all from one buffer
        # rather than paying two system calls per frame.
        while not self._frames:
            if self.before_wait is not None:
                self.before_wait()
            try:
                chunk = os.read(self.resp_fd, max(1 << 16, len(self._reader.buffer) + 4))
            except OSError as exc:
                raise CandidateGone(f"the program's process ended ({exc})") from None
            if not chunk:
                raise CandidateGone("the program's process ended (pipe closed)")
            try:
                self._frames.extend(self._reader.feed(chunk))
            except ChannelClosed as exc:
                raise CandidateGone(f"the program's process sent an oversized frame ({exc})") from None
        return self._frames.popleft()

    def _receive(self) -> list[Any]:
        try:
            reply = json.loads(self._next_frame().decode("utf-8", "surrogatepass"))
        except (ValueError, RecursionError):
            raise CandidateGone("the program's process broke the protocol") from None
        if type(reply) is not list or not reply or type(reply[0]) is not str:
            raise CandidateGone("the program's process broke the protocol")
        return reply

    def _read_pending(self) -> tuple[str, list[Any]]:
        key = self._pending.popleft()
        self._unread[key] -= 1
        return key, self._receive()

    def request(self, message: list[Any]) -> list[Any]:
        """Send one request and return its reply (after any batch replies still in flight)."""
        while self._pending:
            key, reply = self._read_pending()
            self._ready.setdefault(key, deque()).append(reply)
        self._send(message)
        return self._receive()

    def prefetch(self, calls: list[list[Any]]) -> None:
        """Ask for ``[name, args_tree, kwargs_tree]`` calls now; :meth:`call` picks them up."""
        if calls:
            self._send(["batch", calls])
            for call in calls:
                key = json.dumps(call)
                self._pending.append(key)
                self._unread[key] += 1

    def call(self, name: str, args_tree: Any, kwargs_tree: Any) -> list[Any]:
        """The reply to calling ``name``: prefetched if it was, else a fresh request."""
        call = [name, args_tree, kwargs_tree]
        key = json.dumps(call)
        ready = self._ready.get(key)
        if ready:
            return ready.popleft()
        if self._unread[key]:
            while True:
                pending_key, reply = self._read_pending()
                if pending_key == key:
                    return reply
                self._ready.setdefault(pending_key, deque()).append(reply)
        return self.request(["call", *call])


class CandidateFunction:
    """Calls the candidate's top-level function ``name`` in its process."""

    def __init__(self, link: Link, name: str) -> None:
        self._link, self.__name__ = link, name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        reply = self._link.call(self.__name__, codec.to_tree(list(args)), codec.to_tree(kwargs))
        if reply[0] == "ok" and len(reply) == 2:
            try:
                return codec.from_tree(reply[1])
            except codec.CodecError as exc:
                raise CandidateGone(f"malformed return value: {exc}") from None
        if reply[0] == "raise" and len(reply) == 3 and all(type(x) is str for x in reply[1:]):
            raise _candidate_error(reply[1][:100], reply[2][:MAX_MESSAGE])
        raise CandidateGone("the program's process broke the protocol")

    def __repr__(self) -> str:
        return f"<candidate function {self.__name__}>"


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:MAX_MESSAGE]


_CODE_CACHE: dict[tuple[str, str], Any] = {}
#: Compiled tests kept by a harness lane: GRPO scores the same task G times in a row.
_CODE_CACHE_SIZE = 256


def _compile(source: str, filename: str) -> Any:
    key = (source, filename)
    code = _CODE_CACHE.get(key)
    if code is None:
        if len(_CODE_CACHE) >= _CODE_CACHE_SIZE:
            _CODE_CACHE.clear()
        code = _CODE_CACHE[key] = compile(source, filename, "exec")
    return code


#: Syntax whose sub-expressions may not run (or run later): calls under them are not prefetched.
_CONDITIONAL = (
    ast.If,
    ast.For,
    ast.While,
    ast.Try,
    ast.With,
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.Lambda,
    ast.BoolOp,
    ast.IfExp,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
    ast.Match,
    ast.AsyncFor,
    ast.AsyncWith,
)


#: Nodes that hold no call: not walked.
_LEAVES = (ast.Name, ast.Constant, ast.expr_context, ast.operator, ast.cmpop, ast.unaryop, ast.boolop)

_CALLS_CACHE: dict[tuple[str, frozenset[str]], list[list[Any]]] = {}


def literal_calls(source: str, names: set[str]) -> list[list[Any]]:
    """Cached :func:`find_literal_calls` (a lane sees the same tests G times in a row)."""
    key = (source, frozenset(names))
    calls = _CALLS_CACHE.get(key)
    if calls is None:
        if len(_CALLS_CACHE) >= _CODE_CACHE_SIZE * 16:
            _CALLS_CACHE.clear()
        calls = _CALLS_CACHE[key] = find_literal_calls(source, names)
    return calls


def find_literal_calls(source: str, names: set[str]) -> list[list[Any]]:
    """The calls of ``names`` in ``source`` that will certainly run, in order, with literal
    arguments: ``[name, args_tree, kwargs_tree]`` for :meth:`Link.prefetch`.

    Only unconditional code counts (not under ``if``, loops, ``try``, ``and``/``or``, lambdas,
    comprehensions or an assertion's message), so a prefetched call is one the tests would
    have made anyway, in the same order relative to the other prefetched calls.
    """
    try:
        module = ast.parse(source)
    except SyntaxError:
        return []
    calls: list[list[Any]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, _CONDITIONAL):
            return
        if isinstance(node, ast.Assert):
            visit(node.test)  # the message is evaluated only on failure
            return
        # ast.iter_child_nodes, inlined, without the leaves (names, constants, load/store
        # contexts): this walk is a tenth of a harness lane's time per HumanEval job
        for field in node._fields:  # arguments are evaluated before the call
            value = getattr(node, field, None)
            if isinstance(value, list):
                for item in value:
                    if isinstance(item, ast.AST) and not isinstance(item, _LEAVES):
                        visit(item)
            elif isinstance(value, ast.AST) and not isinstance(value, _LEAVES):
                visit(value)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names:
            try:
                if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
                    raise ValueError("unpacking")
                args = [ast.literal_eval(a) for a in node.args]
                kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                return
            calls.append([node.func.id, codec.to_tree(args), codec.to_tree(kwargs)])

    for statement in module.body:
        visit(statement)
    return calls


def _outcome_of(exc: BaseException) -> tuple[str, str, str | None]:
    if isinstance(exc, CandidateError):
        return TEST_ERROR, str(exc)[:MAX_MESSAGE], exc.type_name
    if isinstance(exc, AssertionError):
        return TEST_FAILED, _describe(exc), None
    return TEST_ERROR, _describe(exc), type(exc).__name__


def _normalise(text: str, compare: str) -> Any:
    if compare == "tokens":
        return text.split()
    if compare == "lines":
        return [line.rstrip() for line in text.rstrip().splitlines()]
    return text


def run(job: SandboxJob, link: Link, report: Callable[[list[Any]], None], *, cpu_margin: int = 1) -> None:
    """Run ``job``'s tests against the candidate on the other end of ``link``.

    The candidate's RLIMIT_CPU becomes the job's timeout rounded up plus ``cpu_margin``
    seconds (:attr:`~grpo_envs.sandbox.ResourceLimits.cpu_margin`).

    Reports, in order: zero or more ``["test", index, status, message, error_type]``, then
    one of ``["done"]``, ``["load_failed", type, message]``, ``["gone", message]`` (the
    candidate's process ended before the tests completed), ``["harness_error", message]``.
    """
    tests = job.tests
    mode = "function" if isinstance(tests, FunctionTests) else ("io" if isinstance(tests, IOTests) else "run")
    compiled = []
    if isinstance(tests, FunctionTests):
        try:
            setup = _compile(tests.setup, "<setup>")
            compiled = [_compile(source, f"<test {i}>") for i, source in enumerate(tests.tests)]
        except SyntaxError as exc:
            report(["harness_error", f"the task's tests do not compile: {_describe(exc)}"])
            return
    send_failed = None
    try:
        # The load request and the first calls go out together: the program's process reads
        # them in order, so the whole job costs the two processes a couple of wake-ups.
        link._send(["load", job.program, mode, math.ceil(job.timeout) + cpu_margin])
        if isinstance(tests, FunctionTests):
            aliases = dict(tests.bind)
            link.prefetch(
                [
                    [aliases[name], args, kwargs]
                    for source in tests.tests
                    for name, args, kwargs in literal_calls(source, set(aliases))
                ]
            )
        elif isinstance(tests, IOTests):
            link._send(["mains", [stdin_text for stdin_text, _ in tests.cases]])
    except CandidateGone as exc:
        # A program that does not compile answers the load request and exits while the
        # calls behind it are still being written: its answer is already in the pipe.
        send_failed = exc
    try:
        loaded = link._receive()
    except CandidateGone as exc:
        report(["gone", str(send_failed or exc)])
        return
    if send_failed is not None and loaded[0] not in ("load_failed", "sandbox_error"):
        report(["gone", str(send_failed)])
        return
    if loaded[0] == "sandbox_error":
        report(["harness_error", f"isolation failed: {str(loaded[1:])[:MAX_MESSAGE]}"])
        return
    if loaded[0] == "load_failed" and len(loaded) == 3:
        report(["load_failed", str(loaded[1])[:100], str(loaded[2])[:MAX_MESSAGE]])
        return
    if mode == "run":
        if loaded[0] == "ran" and len(loaded) == 3:
            error = loaded[2]
            if error:
                report(["load_failed", str(error[0])[:100], str(error[1])[:MAX_MESSAGE]])
            else:
                report(["done"])
        else:
            report(["gone", "the program's process broke the protocol"])
        return
    if loaded[0] != "loaded" or len(loaded) != 2 or type(loaded[1]) is not list:
        report(["gone", "the program's process broke the protocol"])
        return

    if isinstance(tests, IOTests):
        _run_io(tests, job.stop_on_failure, link, report)
        return

    assert isinstance(tests, FunctionTests)
    namespace: dict[str, Any] = {"__name__": "__tests__"}
    try:
        exec(setup, namespace)
    except BaseException as exc:  # noqa: BLE001 - a broken task, not the candidate's fault
        report(["harness_error", f"the task's setup code raised {_describe(exc)}"])
        return
    for name in loaded[1][:10_000]:
        if type(name) is str and name.isidentifier() and name not in namespace:
            namespace[name] = CandidateFunction(link, name)
    for alias, target in tests.bind.items():
        namespace[alias] = CandidateFunction(link, target)
    for index, code in enumerate(compiled):
        try:
            exec(code, namespace)
            status, message, error_type = PASSED, "", None
        except CandidateGone as exc:
            report(["test", index, TEST_ERROR, str(exc), None])
            report(["gone", str(exc)])
            return
        except BaseException as exc:  # noqa: BLE001 - any failure of the test is its verdict
            status, message, error_type = _outcome_of(exc)
        report(["test", index, status, message, error_type])
        if status != PASSED and job.stop_on_failure:
            break
    report(["done"])


def _run_io(tests: IOTests, stop_on_failure: bool, link: Link, report: Callable[[list[Any]], None]) -> None:
    # every input was sent with the program: it runs them in order, one reply each
    for index, (_, expected) in enumerate(tests.cases):
        try:
            reply = link._receive()
        except CandidateGone as exc:
            report(["test", index, TEST_ERROR, str(exc), None])
            report(["gone", str(exc)])
            return
        if reply[0] != "ran" or len(reply) != 3 or type(reply[1]) is not str:
            report(["test", index, TEST_ERROR, "the program's process broke the protocol", None])
            report(["gone", "the program's process broke the protocol"])
            return
        output, error = reply[1], reply[2]
        if error:
            status, message, error_type = TEST_ERROR, f"{error[0]}: {error[1]}"[:MAX_MESSAGE], str(error[0])[:100]
        elif _normalise(output, tests.compare) == _normalise(expected, tests.compare):
            status, message, error_type = PASSED, "", None
        else:
            status, message, error_type = TEST_FAILED, f"output {output[:200]!r} != expected {expected[:200]!r}", None
        report(["test", index, status, message, error_type])
        if status != PASSED and stop_on_failure:
            break
    report(["done"])


__all__ = ["NOT_RUN", "CandidateError", "CandidateFunction", "CandidateGone", "Link", "run"]
