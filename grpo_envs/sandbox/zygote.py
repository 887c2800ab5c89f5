"""The zygote: schedules jobs over harness lanes and warm candidate processes.

Process tree (started by :class:`~grpo_envs.sandbox.pool.Sandbox`)::

    your process (may have torch loaded)
      └─ zygote (a fresh interpreter: standard library + the sandbox's own modules)
           ├─ harness lanes, one per worker (trusted: receive a job, run its tests, report)
           └─ fork server (a fresh interpreter with the pre-imported modules; never sees a test)
                └─ candidate processes, one per job (isolated: run the program, answer calls)

Throughput comes from doing the expensive steps ahead of time: the fork server keeps one
*warm* candidate process per worker already forked and isolated (in its own working
directory, waiting for a program), and the harness lanes live across jobs. A job then costs
the zygote a few messages; a candidate process is still used for exactly one job and killed
right after its verdict. A lane that overruns a deadline is killed and replaced.

The zygote talks to your process over its stdin/stdout with length-prefixed pickles, and to
the fork server and the lanes over Unix sockets that also carry each job's file descriptors.
Everything is a single-threaded event loop on ``selectors``, so forking is always safe.
"""

from __future__ import annotations

import gc
import json
import os
import pickle
import selectors
import signal
import socket
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from grpo_envs.sandbox import landlock, privileges
from grpo_envs.sandbox.bootstrap import bootstrap_source
from grpo_envs.sandbox.channel import MAX_FRAME, ChannelClosed, FrameReader, frame, read_frame
from grpo_envs.sandbox.isolation import close_fds_except
from grpo_envs.sandbox.job import SandboxJob
from grpo_envs.sandbox.lane import MAX_REPORT, lane_main, read_reports
from grpo_envs.sandbox.limits import ResourceLimits
from grpo_envs.sandbox.process_results import SIGNAL_MEANING, name_of_signal, read_output, remove_tree
from grpo_envs.sandbox.result import (
    ERROR,
    FAILED,
    KILLED,
    MEMORY,
    NOT_RUN,
    OK,
    TIMEOUT,
    SandboxResult,
    TestOutcome,
)

#: Candidate processes kept forked and isolated ahead of time, per worker: with two, the
#: next job never waits for the fork server while it warms the one after.
WARM_PER_WORKER = 2
#: Preloaded as well where programs could not import them from disk: as root without
#: Landlock (whose read layer comes with the capability to read the interpreter's files), the
#: unprivileged uid may not read an interpreter installed under a private home. The modules
#: :data:`~grpo_envs.sandbox.pool.DEFAULT_PRELOAD` leaves out for speed.
UNREADABLE_INTERPRETER_PRELOAD = (
    "calendar",
    "dataclasses",
    "difflib",
    "pprint",
    "queue",
    "random",
    "statistics",
    "threading",
)
#: Seconds to wait before asking the fork server again after a failed fork.
SPAWN_RETRY_DELAY = 0.05


def _private_directory(parent: str, prefix: str = "") -> str:
    """A new directory (mode 700) with an unguessable name in ``parent``, like
    ``tempfile.mkdtemp`` with one ``os.urandom`` call instead of ``random`` (one per job: a
    candidate's working directory)."""
    while True:
        path = os.path.join(parent, prefix + os.urandom(9).hex())
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            continue


def _interpreter_paths() -> list[str]:
    """Directories this interpreter imports from (standard library and site-packages): the
    Landlock read layer lets programs read them."""
    import sysconfig

    paths = {sysconfig.get_path(name) for name in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths.update(p for p in sys.path if p and os.path.isdir(p))
    return sorted(p for p in paths if p and os.path.isdir(p))


def _start_forkserver(hidden_paths: list[str], may_mount: bool) -> tuple[int, socket.socket, list[str]]:
    """Start the fork server: a fresh interpreter, not a fork of this process, so that the
    memory every candidate process copies at fork and tears down at exit holds only the
    preloaded modules and the candidate's side of the sandbox (7 MiB instead of 10: the
    zygote's scheduling, the harness and ``dataclasses`` stay out).

    Test files are hidden with mounts (where ``may_mount``) between fork and exec: in a user
    namespace, exec drops the capabilities that mounting needs. A hidden path that holds the
    interpreter or this package is not mounted over (the new interpreter imports from there):
    Landlock's read layer carves it out for the candidates instead.

    :returns: its pid, the zygote's end of the socket between them, and the hidden paths the
        mounts cover (the fork server's Landlock layer carves out the others).
    """
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    argv = [sys.executable, "-I", "-X", "utf8", "-c", bootstrap_source("grpo_envs.sandbox.forkserver")]
    argv += [package_dir, str(theirs.fileno())]
    interpreter_dir = os.path.dirname(os.path.realpath(sys.executable))
    needed = [os.path.realpath(p) for p in (package_dir, sys.prefix, sys.base_prefix, interpreter_dir)]
    mountable = []
    for path in hidden_paths:
        real = os.path.realpath(path)
        if not any(landlock.is_within(n, real) for n in needed):
            mountable.append(path)
    pid = os.fork()
    if pid == 0:
        try:
            mounted: list[str] = []
            if mountable and may_mount:
                try:
                    mounted = privileges.hide_with_mounts(mountable)
                except OSError:
                    pass
            theirs.send(pickle.dumps(mounted))
            null = os.open("/dev/null", os.O_RDWR)
            os.dup2(null, 0)  # not the parent's pipes: only the zygote talks to the parent
            os.dup2(null, 1)
            close_fds_except({0, 1, 2, theirs.fileno()})
            os.set_inheritable(theirs.fileno(), True)
            # every symbol bound now, once: lazily, each candidate process would resolve the
            # ones it calls first itself (and copy the pages the dynamic linker writes)
            os.execve(sys.executable, argv, {**os.environ, "LD_BIND_NOW": "1"})
        finally:
            os._exit(1)
    theirs.close()
    data = ours.recv(1 << 16)
    return pid, ours, pickle.loads(data) if data else []


@dataclass(frozen=True)
class ZygoteConfig:
    """Start-up settings sent by :class:`~grpo_envs.sandbox.pool.Sandbox` (see its docstring)."""

    preload: tuple[str, ...] = ()
    limits: ResourceLimits = field(default_factory=ResourceLimits)
    max_workers: int = 2
    drop_user: bool = True
    network_namespace: bool = True
    landlock: bool = True
    seccomp: bool = True
    hidden_paths: tuple[str, ...] = ()
    readable_paths: tuple[str, ...] = ()
    output_limit: int = 8 * 1024
    temporary_directory: str = "/tmp"  # where the scratch directory goes (the parent's gettempdir())


@dataclass
class _Slot:
    """A candidate process forked ahead of time, with the zygote's ends of its pipes."""

    slot_id: int
    workdir: str
    req_w: int
    resp_r: int
    out_fd: int
    err_fd: int
    status: int | None = None  # wait status once it exited
    kill_sent: bool = False
    job_id: int | None = None


@dataclass
class _Lane:
    """A harness process that runs one job at a time."""

    pid: int
    pidfd: int
    sock: socket.socket
    job_id: int | None = None


@dataclass
class _Run:
    job_id: int
    job: SandboxJob
    slot: _Slot
    lane: _Lane
    started: float
    deadline: float
    outcomes_fd: int = -1  # per-test reports, appended by the lane as JSON lines
    terminal: list[Any] | None = None
    timed_out: bool = False
    lane_died: bool = False
    spawn_error: str | None = None


class Zygote:
    """The event loop described in the module docstring."""

    def __init__(self, config: ZygoteConfig) -> None:
        self.config = config
        self.selector = selectors.DefaultSelector()
        self.queue: deque[tuple[int, SandboxJob]] = deque()
        self.runs: dict[int, _Run] = {}
        self.slots: dict[int, _Slot] = {}  # every live candidate process, warm or in use
        self.warm: deque[_Slot] = deque()  # spawned and unused (a job may take one before its
        # process has even been forked: the program then waits in its pipe)
        self.lanes: list[_Lane] = []
        self.outgoing = bytearray()
        self.inbox = FrameReader(max_size=None)  # from the trusted parent
        self.closing = False
        self.fatal = False
        self.layers: dict[str, Any] = {}
        self.preloaded: list[str] = []  # reported by the fork server
        self.ids: tuple[int, int] | None = None
        self.next_slot = 0
        self.spawn_retry_at = 0.0

    # -- start-up ------------------------------------------------------------------------

    def start(self) -> None:
        """Enter the network namespace, start the fork server and the lanes."""
        config = self.config
        privileges.set_process_name("grpo-zygote")
        # Move everything imported so far out of the collector's reach: a collection in a
        # forked lane would otherwise touch (and copy-on-write) every object's page.
        gc.collect()
        gc.freeze()
        user_namespace = False
        self.layers["network_namespace"] = False
        if config.network_namespace:
            try:
                how = privileges.enter_network_namespace()
                self.layers["network_namespace"] = how
                user_namespace = how.startswith("userns")
            except OSError:
                pass
        if config.drop_user and os.geteuid() == 0:
            self.ids = privileges.unprivileged_ids()
        self.base = _private_directory(config.temporary_directory, "grpo-sandbox-")
        os.chmod(self.base, 0o711)  # traversable by the unprivileged uid, not listable
        self.layers["workdir_quota"] = False
        if os.geteuid() == 0 or user_namespace:
            try:
                privileges.mount_scratch_tmpfs(self.base, config.limits.disk)
                self.layers["workdir_quota"] = config.limits.disk
            except OSError:
                pass
        preload = config.preload
        if config.drop_user and os.geteuid() == 0 and not (config.landlock and landlock.abi_version()):
            preload += tuple(name for name in UNREADABLE_INTERPRETER_PRELOAD if name not in preload)
        limits = config.limits
        hidden = [p for p in config.hidden_paths if os.path.exists(p)]
        self.forkserver_pid, self.sock, mounted = _start_forkserver(hidden, os.geteuid() == 0 or user_namespace)
        settings = {
            "preload": list(preload),
            "ids": self.ids,
            "hidden_paths": hidden,
            "mounted": mounted,
            "limits": {"memory": limits.memory, "file_size": limits.file_size, "processes": limits.processes},
            "open_files": limits.open_files,
            "user_namespace": user_namespace,
            "seccomp": config.seccomp,
            "landlock": config.landlock,
            "base": self.base,
            "readable_paths": _interpreter_paths() + list(config.readable_paths),
        }
        try:
            self.sock.send(pickle.dumps(settings))
            data = self.sock.recv(1 << 16)
        except OSError:
            data = b""
        if data:
            _, layers, self.preloaded = pickle.loads(data)
        else:
            layers = {"probe_error": f"the fork server's interpreter ({sys.executable} -I) exited before it was ready"}
        remove_tree(os.path.join(self.base, "probe"))
        if "process_group" not in layers:  # the fork server could not isolate itself
            self._send(("failed", str(layers.get("probe_error", "the fork server failed to start"))))
            os.set_blocking(1, True)
            self._flush()
            sys.exit(1)
        self.layers.update(layers)
        if not layers.get("unprivileged_uid"):
            self.ids = None
        self.layers.setdefault("unprivileged_uid", False)
        self.forkserver_pidfd = os.pidfd_open(self.forkserver_pid)
        os.set_blocking(0, False)
        os.set_blocking(1, False)
        self.selector.register(0, selectors.EVENT_READ, ("parent", None))
        self.selector.register(self.sock, selectors.EVENT_READ, ("forkserver", None))
        self.selector.register(self.forkserver_pidfd, selectors.EVENT_READ, ("forkserver_died", None))
        for _ in range(config.max_workers):
            self.lanes.append(self._start_lane())
        self._top_up_warm()
        self._send(("ready", dict(self.layers), self.base, self.preloaded))
        self._flush()

    def _start_lane(self) -> _Lane:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            lane_main(theirs, self.config.limits.cpu_margin)
        theirs.close()
        lane = _Lane(pid, os.pidfd_open(pid), ours)
        self.selector.register(ours, selectors.EVENT_READ, ("lane", lane))
        self.selector.register(lane.pidfd, selectors.EVENT_READ, ("lane_died", lane))
        return lane

    def _retire_lane(self, lane: _Lane) -> None:
        """Kill a lane (its job overran, or it died) and start a replacement."""
        for resource_ in (lane.sock, lane.pidfd):
            try:
                self.selector.unregister(resource_)
            except (KeyError, ValueError):
                pass
        try:
            os.kill(lane.pid, signal.SIGKILL)  # our unreaped child: the pid cannot be reused
        except OSError:
            pass
        os.waitpid(lane.pid, 0)
        os.close(lane.pidfd)
        lane.sock.close()
        index = self.lanes.index(lane)
        self.lanes[index] = self._start_lane() if not self.closing else lane
        if self.closing:
            self.lanes.pop(index)

    # -- warm candidate processes --------------------------------------------------------

    def _top_up_warm(self) -> None:
        if time.monotonic() < self.spawn_retry_at:
            return
        while len(self.warm) < WARM_PER_WORKER * self.config.max_workers and not self.closing:
            self._spawn_slot()

    def _spawn_slot(self) -> None:
        workdir = _private_directory(self.base)
        if self.ids is not None:
            os.chown(workdir, *self.ids)
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        out_fd = os.memfd_create("stdout", 0)
        err_fd = os.memfd_create("stderr", 0)
        slot = _Slot(self.next_slot, workdir, req_w, resp_r, out_fd, err_fd)
        self.next_slot += 1
        socket.send_fds(self.sock, [pickle.dumps(("spawn", slot.slot_id, workdir))], [req_r, resp_w, out_fd, err_fd])
        os.close(req_r)
        os.close(resp_w)
        self.slots[slot.slot_id] = slot
        self.warm.append(slot)

    def _kill_slot(self, slot: _Slot) -> None:
        """Kill a used candidate process and fork its replacement: both messages leave
        together, so the fork server wakes once for the pair."""
        if not slot.kill_sent and slot.status is None:
            slot.kill_sent = True
            self.sock.send(pickle.dumps(("kill", slot.slot_id)))
        self._top_up_warm()

    def _release_slot(self, slot: _Slot) -> None:
        """The candidate process is gone: free its files."""
        self.slots.pop(slot.slot_id, None)
        for fd in (slot.req_w, slot.resp_r, slot.out_fd, slot.err_fd):
            if fd >= 0:
                os.close(fd)
        slot.req_w = slot.resp_r = slot.out_fd = slot.err_fd = -1
        remove_tree(slot.workdir)

    # -- talking to the parent -----------------------------------------------------------

    def _send(self, message: Any) -> None:
        """Queue a message for the parent (written at the end of the loop iteration, so results
        that finish together reach the parent in one write)."""
        self.outgoing += frame(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))

    def _flush(self) -> None:
        while self.outgoing:
            try:
                written = os.write(1, self.outgoing)
            except BlockingIOError:
                break
            except OSError:  # the parent is gone
                self.outgoing.clear()
                self.closing = True
                break
            del self.outgoing[:written]
        registered = 1 in self.selector.get_map()
        if self.outgoing and not registered:
            self.selector.register(1, selectors.EVENT_WRITE, ("parent_out", None))
        elif not self.outgoing and registered:
            self.selector.unregister(1)

    def _on_parent(self) -> None:
        try:
            data = os.read(0, 1 << 20)
        except BlockingIOError:
            return
        if not data:
            self.closing = True
            return
        for payload in self.inbox.feed(data):
            message = pickle.loads(payload)
            if message[0] == "run":
                self.queue.append((message[1], message[2]))
            elif message[0] == "close":
                self.closing = True

    # -- jobs ------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        while self.queue and self.warm and not self.closing:
            lane = next((lane for lane in self.lanes if lane.job_id is None), None)
            if lane is None:
                return
            job_id, job = self.queue.popleft()
            slot = self.warm.popleft()
            slot.job_id, lane.job_id = job_id, job_id
            job_fd = os.memfd_create("job", 0)
            os.write(job_fd, pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL))
            outcomes_fd = os.memfd_create("outcomes", 0)
            started = time.monotonic()
            try:
                socket.send_fds(lane.sock, [b"job"], [job_fd, slot.req_w, slot.resp_r, outcomes_fd])
            except OSError:
                os.close(outcomes_fd)
                lane.job_id = None
                self.queue.appendleft((job_id, job))
                self.warm.appendleft(slot)
                self._retire_lane(lane)
                continue
            finally:
                os.close(job_fd)
            os.close(slot.req_w)
            os.close(slot.resp_r)
            slot.req_w = slot.resp_r = -1
            self.runs[job_id] = _Run(job_id, job, slot, lane, started, started + job.timeout, outcomes_fd=outcomes_fd)

    def _on_lane(self, lane: _Lane) -> None:
        try:
            data = lane.sock.recv(MAX_REPORT)
        except OSError:
            data = b""
        if not data:
            return  # the lane died; its pidfd reports it
        run = self.runs.get(lane.job_id) if lane.job_id is not None else None
        if run is None:
            return
        try:
            message = json.loads(data.decode("utf-8", "surrogatepass"))
        except (ValueError, UnicodeDecodeError):
            return
        if not isinstance(message, list) or not message:
            return
        run.terminal = message
        lane.job_id = None
        self._kill_slot(run.slot)
        if message[0] != "gone" or run.slot.status is not None:
            self._finish(run)
        # "gone": the program's process ended by itself; wait for its exit status

    def _on_lane_died(self, lane: _Lane) -> None:
        run = self.runs.get(lane.job_id) if lane.job_id is not None else None
        lane.job_id = None
        self._retire_lane(lane)
        if run is not None and run.terminal is None:
            run.lane_died = True
            self._kill_slot(run.slot)
            self._finish(run)

    def _on_forkserver(self) -> None:
        data = self.sock.recv(1 << 16)
        if not data:
            self._on_forkserver_died()
            return
        message = pickle.loads(data)
        slot = self.slots.get(message[1])
        if slot is None:
            return
        if message[0] == "exited":
            slot.status = message[2]
            if slot in self.warm:  # died before use (killed from outside, or isolation failed):
                self.warm.remove(slot)  # do not respawn in a tight loop
                self.spawn_retry_at = time.monotonic() + SPAWN_RETRY_DELAY
            run = self.runs.get(slot.job_id) if slot.job_id is not None else None
            if run is not None and run.terminal is not None and run.terminal[0] == "gone":
                self._finish(run)
            if slot.job_id is None or slot.job_id not in self.runs:
                self._release_slot(slot)
            self._top_up_warm()
        elif message[0] == "spawn_failed":
            # out of processes (RLIMIT_NPROC, shared by every candidate's threads) or memory:
            # try again shortly instead of failing jobs
            slot.status = -1
            if slot in self.warm:
                self.warm.remove(slot)
            run = self.runs.get(slot.job_id) if slot.job_id is not None else None
            if run is not None and run.terminal is None:  # a job already waits on it
                run.spawn_error = str(message[2])
                run.lane.job_id = None
                self._retire_lane(run.lane)
                self._finish(run)
            self._release_slot(slot)
            self.spawn_retry_at = time.monotonic() + SPAWN_RETRY_DELAY

    def _on_forkserver_died(self) -> None:
        for run in list(self.runs.values()):
            run.slot.status = run.slot.status if run.slot.status is not None else -1
            if run.terminal is None:
                run.lane_died = True
            self._finish(run)
        self.closing = True
        self.fatal = True

    def _check_deadlines(self) -> float | None:
        now = time.monotonic()
        nearest = None
        if self.spawn_retry_at > now:
            self._top_up_warm()
            nearest = self.spawn_retry_at - now
        if self.spawn_retry_at and now >= self.spawn_retry_at:
            self.spawn_retry_at = 0.0
            self._top_up_warm()
        for run in list(self.runs.values()):
            if run.terminal is not None:
                continue
            if now >= run.deadline:
                run.timed_out = True
                run.lane.job_id = None
                self._retire_lane(run.lane)
                self._kill_slot(run.slot)
                self._finish(run)
            else:
                remaining = run.deadline - now
                nearest = remaining if nearest is None else min(nearest, remaining)
        return nearest

    def _finish(self, run: _Run) -> None:
        if run.job_id not in self.runs:
            return
        del self.runs[run.job_id]
        self._send(("result", run.job_id, self._compose(run)))
        os.close(run.outcomes_fd)
        if run.slot.status is not None:
            self._release_slot(run.slot)
        # otherwise released when the fork server reports the (killed) process's exit

    def _compose(self, run: _Run) -> SandboxResult:
        job, slot = run.job, run.slot
        outcomes = {i: TestOutcome(i, NOT_RUN) for i in range(job.num_tests)}
        for report in read_reports(run.outcomes_fd):
            if len(report) >= 5 and isinstance(report[1], int) and report[1] in outcomes:
                _, index, status, message, error_type = report[:5]
                outcomes[index] = TestOutcome(
                    index, str(status), str(message or ""), error_type if isinstance(error_type, str) else None
                )
        tests = tuple(outcomes[i] for i in range(job.num_tests))
        terminal = run.terminal or []
        exit_code = signal_name = error_type = None
        if run.spawn_error:
            status, message = ERROR, f"the program's process could not be started: {run.spawn_error}"
        elif run.timed_out:
            status, message = TIMEOUT, f"wall-clock limit of {job.timeout:g} s exceeded"
        elif run.lane_died:
            status, message = ERROR, "the harness process died without a verdict"
        elif terminal[0] == "harness_error":
            status, message = ERROR, str(terminal[1:2])[:500]
        elif terminal[0] == "load_failed":
            error_type = str(terminal[1])
            status = MEMORY if error_type == "MemoryError" else FAILED
            message = f"{error_type}: {terminal[2]}"
        elif terminal[0] == "gone":
            # the harness lost the program before the verdict
            word = slot.status if slot.status is not None and slot.status >= 0 else None
            if word is not None and os.WIFEXITED(word):
                exit_code = os.WEXITSTATUS(word)
                status, error_type = FAILED, "ProcessExit"
                message = f"the program's process exited with code {exit_code} before the tests completed"
            elif word is not None and os.WIFSIGNALED(word):
                signal_name = name_of_signal(os.WTERMSIG(word))
                status = TIMEOUT if signal_name == "SIGXCPU" else KILLED
                message = f"the program was killed by {signal_name} ({SIGNAL_MEANING.get(signal_name, 'signal')})"
            else:
                status, message = KILLED, str(terminal[1:2])[:500]
        else:  # done
            status = MEMORY if any(t.error_type == "MemoryError" for t in tests) else OK
            passed = sum(t.status == "passed" for t in tests)
            message = f"{passed}/{len(tests)} tests passed" if tests else "the program ran to completion"
        stdout = stderr = ""
        if slot.out_fd >= 0:
            stdout = read_output(slot.out_fd, self.config.output_limit)
            stderr = read_output(slot.err_fd, self.config.output_limit)
        return SandboxResult(
            status=status,
            tests=tests,
            stdout=stdout,
            stderr=stderr,
            message=message,
            error_type=error_type,
            exit_code=exit_code,
            signal=signal_name,
            layers=self.layers,
            elapsed=time.monotonic() - run.started,
        )

    # -- main loop -----------------------------------------------------------------------

    def loop(self) -> None:
        """Serve until the parent closes the pipe (or says ``close``), then clean up."""
        while not (self.closing and not self.runs):
            self._dispatch()
            timeout = self._check_deadlines()
            if self.closing:
                for run in list(self.runs.values()):
                    run.timed_out = True
                    self._kill_slot(run.slot)
                    self._finish(run)
                break
            for key, _ in self.selector.select(timeout):
                kind, target = key.data
                if kind == "parent":
                    self._on_parent()
                elif kind == "parent_out":
                    self._flush()
                elif kind == "lane":
                    self._on_lane(target)
                elif kind == "lane_died":
                    if target in self.lanes:
                        self._on_lane_died(target)
                elif kind == "forkserver":
                    self._on_forkserver()
                elif kind == "forkserver_died":
                    self.selector.unregister(self.forkserver_pidfd)
                    self._on_forkserver_died()
            if self.outgoing:
                self._flush()
        os.set_blocking(1, True)
        try:
            self._flush()
        except OSError:
            pass
        self.sock.close()  # the fork server kills every candidate process and exits
        for lane in list(self.lanes):
            try:
                os.kill(lane.pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            os.waitpid(self.forkserver_pid, 0)
        except OSError:
            pass
        remove_tree(self.base)


def main() -> None:
    """Entry point of the zygote process (started by :class:`~grpo_envs.sandbox.pool.Sandbox`)."""
    try:
        config = pickle.loads(read_frame(0, max_size=MAX_FRAME))
    except ChannelClosed:
        sys.exit(1)
    zygote = Zygote(config)
    zygote.start()
    zygote.loop()
    sys.exit(1 if zygote.fatal else 0)
