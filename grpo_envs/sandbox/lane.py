"""A harness lane: a trusted process that runs one job's tests at a time against a candidate process.

The zygote forks its lanes at start-up and hands each job over a Unix socket, with the job's
file descriptors (the pickled job, the candidate's request/response pipes, and a file the lane
appends per-test reports to). Terminal messages go back on the socket; per-test reports go to
the file, so that a job killed at its deadline keeps the outcomes of the tests that ran.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import socket
from collections.abc import Callable
from typing import Any

from grpo_envs.sandbox import harness, privileges
from grpo_envs.sandbox.isolation import close_fds_except
from grpo_envs.sandbox.limits import MiB

#: Address-space cap of a harness lane: it holds the tests and decoded return values.
HARNESS_MEMORY = 4 * 1024 * MiB
_PR_SET_DUMPABLE = 4
MAX_REPORT = 64 * 1024


def lane_main(sock: socket.socket, cpu_margin: int) -> None:
    """A harness lane: run jobs received on ``sock`` until it closes. Never returns.

    :param cpu_margin: seconds of CPU time a program gets beyond its job's timeout.
    """
    try:
        privileges.set_process_name("grpo-harness")
        null = os.open("/dev/null", os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        close_fds_except({0, 1, 2, sock.fileno()})
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        import ctypes
        import resource

        # not dumpable: a same-uid program cannot read this process's memory through /proc
        ctypes.CDLL(None).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        try:
            resource.setrlimit(resource.RLIMIT_AS, (HARNESS_MEMORY, HARNESS_MEMORY))
        except (ValueError, OSError):
            pass

        while True:
            data, fds, _, _ = socket.recv_fds(sock, 64, 4)
            if not data:
                os._exit(0)
            job_fd, req_w, resp_r, outcomes_fd = fds

            outcomes: list[bytes] = []

            def flush_outcomes(outcomes_fd: int = outcomes_fd, outcomes: list[bytes] = outcomes) -> None:
                # before every wait on the program: a job killed at its deadline keeps them
                if outcomes:
                    os.write(outcomes_fd, b"".join(outcomes))
                    outcomes.clear()

            def report(
                message: list[Any],
                flush_outcomes: Callable[[], None] = flush_outcomes,
                outcomes: list[bytes] = outcomes,
            ) -> None:
                payload = json.dumps(message).encode("utf-8", "surrogatepass")[:MAX_REPORT]
                if message[0] == "test":  # no wake-up: read by the zygote when the job ends
                    outcomes.append(payload + b"\n")
                else:
                    flush_outcomes()
                    sock.send(payload)

            job = pickle.loads(os.pread(job_fd, os.fstat(job_fd).st_size, 0))
            os.close(job_fd)
            try:
                harness.run(job, harness.Link(req_w, resp_r, before_wait=flush_outcomes), report, cpu_margin=cpu_margin)
            except BaseException as exc:  # noqa: BLE001 - reported as a sandbox error
                report(["harness_error", f"{type(exc).__name__}: {exc}"[:500]])
            finally:
                for fd in (req_w, resp_r, outcomes_fd):
                    os.close(fd)
    finally:
        os._exit(0)


def read_reports(fd: int) -> list[Any]:
    """The per-test reports a lane appended to ``fd`` (a line cut off by a kill is skipped)."""
    size = os.fstat(fd).st_size
    if not size:
        return []
    lines = [line for line in os.pread(fd, size, 0).split(b"\n") if line]
    try:  # one decode for the whole file: a cut line makes it invalid, never different
        messages = json.loads(b"[" + b",".join(lines) + b"]")
    except ValueError:
        messages = []
        for line in lines:
            try:
                messages.append(json.loads(line))
            except ValueError:
                continue
    return [m for m in messages if isinstance(m, list) and m and m[0] == "test"]
