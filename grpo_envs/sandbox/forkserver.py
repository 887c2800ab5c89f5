"""The fork server: the clean process every candidate process is forked from.

A fresh interpreter started by the zygote before any job exists (see
:mod:`~grpo_envs.sandbox.bootstrap`), which imports the preloaded modules and then only ever
receives a slot number, a working directory and four file descriptors (the program itself
reaches the candidate process through its pipe). No test, expected value or reference
solution is ever in its memory, so none can be in the memory of a candidate process (whose
address space is a copy of this one). It isolates itself once (see
:mod:`~grpo_envs.sandbox.isolation`) and keeps one candidate process per slot forked ahead
of time.

Whatever this module imports, every candidate process copies and tears down, so it keeps to
the modules the candidate's side needs (no ``dataclasses``, ``shutil`` or ``sysconfig``).
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import os
import pickle
import select
import signal
import socket
import sys
from array import array
from typing import Any

from grpo_envs.sandbox import candidate, landlock, privileges, seccomp
from grpo_envs.sandbox.channel import write_json
from grpo_envs.sandbox.isolation import (
    IsolationPlan,
    close_fds_except,
    isolate_candidate,
    isolate_server,
)

#: Exit code of a candidate process whose isolation failed (sysexits.h EX_SOFTWARE).
ISOLATION_FAILED = 70
_MAX_MESSAGE = 64 * 1024
#: Ancillary space for the four descriptors a spawn message carries (as ``socket.recv_fds``).
_FDS_SPACE = socket.CMSG_SPACE(4 * array("i").itemsize)
_PR_SET_CHILD_SUBREAPER = 36
#: Device files a program may read (and /dev/null write).
_READABLE_DEVICES = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random")
#: Time-zone data, read by ``time.localtime`` and ``datetime``.
_READABLE_SYSTEM = ("/etc/localtime", "/usr/share/zoneinfo")


def _kill_group(pid: int, *, reaped: bool = False) -> None:
    """SIGKILL a candidate's process group (it is its session leader, so the group id is its
    pid; a pid stays reserved while its group has members, so this cannot hit a stranger).

    :param reaped: the candidate itself was already reaped: only its group may be signalled,
        never the bare pid (which the kernel may have reused).
    """
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        if not reaped:
            try:
                os.kill(pid, signal.SIGKILL)  # not yet reaped: the pid is still ours
            except OSError:
                pass


def _candidate_main(plan: IsolationPlan, fds: list[int], workdir: str) -> None:
    """The forked candidate process: isolate, then serve the harness. Never returns."""
    req_fd, resp_fd, out_fd, err_fd = fds
    try:
        privileges.set_process_name("grpo-candidate")
        os.setsid()
        null = os.open("/dev/null", os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        keep = {0, 1, 2, req_fd, resp_fd}
        if plan.read_layer_fd >= 0:
            keep.add(plan.read_layer_fd)
        close_fds_except(keep)
        isolate_candidate(plan, workdir, strict=True)
    except BaseException as exc:  # noqa: BLE001 - fail closed: report and never run the program
        try:
            write_json(resp_fd, ["sandbox_error", f"{type(exc).__name__}: {exc}"])
        finally:
            os._exit(ISOLATION_FAILED)
    try:
        candidate.serve(req_fd, resp_fd)
    except BaseException:  # noqa: BLE001 - the program broke its own end of the channel
        os._exit(1)
    os._exit(0)  # skip the program's atexit handlers and the interpreter's teardown


def _readable(path: str) -> bool:
    """Whether this process can see anything of ``path``: open the file, or list at least one
    entry of the directory (a directory covered by an empty tmpfs lists, but holds nothing)."""
    try:
        if os.path.isdir(path):
            return bool(os.listdir(path))
        open(path, "rb").close()
    except OSError:
        return False
    return True


def _probe(plan: IsolationPlan, workdir: str, hidden: list[str]) -> dict[str, Any]:
    """Fork once, try every layer, check that the important ones bite, report which work."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        layers: dict[str, Any] = {}
        try:
            os.close(read_fd)
            os.setsid()
            layers = isolate_server(plan, strict=True)
            layers.update(isolate_candidate(plan, workdir, strict=True))
            layers["seccomp"] = bool(layers.get("seccomp"))
            if layers.get("seccomp"):
                try:
                    child = os.fork()
                    if child == 0:
                        os._exit(0)
                    layers["seccomp"] = False  # the filter did not bite
                except OSError:
                    pass
            if hidden:
                layers["hidden_unreadable"] = all(not _readable(path) for path in hidden)
        except BaseException as exc:  # noqa: BLE001
            layers["probe_error"] = f"{type(exc).__name__}: {exc}"
        finally:
            try:
                write_json(write_fd, layers)
            finally:
                os._exit(0)
    os.close(write_fd)
    from grpo_envs.sandbox.channel import ChannelClosed, read_json

    try:
        layers = read_json(read_fd)
    except ChannelClosed:
        layers = {"probe_error": "the probe process died"}
    os.close(read_fd)
    os.waitpid(pid, 0)
    return layers


def _prepare(settings: dict[str, Any]) -> tuple[IsolationPlan, dict[str, Any]]:
    """Build the Landlock read layer, probe every layer, hide test files, and isolate this
    process; returns the plan every candidate gets and the layers to report."""
    layers: dict[str, Any] = {"process_group": True, "separate_test_process": True}
    ids = settings["ids"]
    hidden = [p for p in settings["hidden_paths"] if os.path.exists(p)]
    plan = IsolationPlan(
        limits=settings["limits"],
        open_files=settings["open_files"],
        ids=ids,
        user_namespace=settings["user_namespace"],
        seccomp=settings["seccomp"],
    )
    if plan.seccomp and seccomp.seccomp_supported():
        plan.candidate_filter = seccomp.CompiledFilter("candidate")
    # Test files are hidden by empty mounts in a private mount namespace where that is allowed
    # (made by the zygote before it started this interpreter): once, it costs a job nothing.
    # Otherwise Landlock's read layer carves them out, and every candidate pays for the rules
    # (one per sibling of each directory on the way to a hidden path: hundreds in a large
    # site-packages) when its Landlock domain is built.
    mounted = settings["mounted"]
    carved = [p for p in hidden if p not in mounted]
    abi = landlock.abi_version() if settings["landlock"] else 0
    if abi:
        readable = [*_READABLE_DEVICES, *_READABLE_SYSTEM, settings["base"], *settings["readable_paths"]]
        try:
            plan.read_layer_fd = landlock.build_read_layer(abi, readable, carved)
            plan.landlock_abi = abi
            plan.keep_read_capability = ids is not None
        except OSError:
            pass
    probe_dir = os.path.join(settings["base"], "probe")
    os.mkdir(probe_dir, 0o700)
    if ids is not None:
        os.chown(probe_dir, *ids)
    plan.drop_in_server = True  # the probe applies both halves in one process anyway
    probed = _probe(plan, probe_dir, hidden)  # the zygote removes probe_dir
    # keep only what worked: every later job applies exactly this, strictly
    if not probed.get("landlock"):
        if plan.read_layer_fd >= 0:
            os.close(plan.read_layer_fd)
        plan.landlock_abi, plan.read_layer_fd, plan.keep_read_capability = 0, -1, False
    if not probed.get("seccomp"):
        plan.seccomp = False
    if ids is not None and not probed.get("unprivileged_uid"):
        plan.ids = None
    # The server may run as the candidates' uid only if they cannot signal it.
    plan.drop_in_server = plan.seccomp or plan.landlock_abi >= 6
    layers.update(probed)
    layers.pop("no_new_privs", None)
    for name in ("seccomp", "landlock"):  # always reported, False when off or refused
        layers.setdefault(name, False)
    # reported only when the probe, with every layer on, could read none of them
    hidden_by: Any = False
    if layers.pop("hidden_unreadable", False):
        hidden_by = "mount_namespace" if not carved else ("landlock" if not mounted else "mount_namespace+landlock")
    layers["hidden_paths"] = hidden_by if hidden else "none_configured"
    if not plan.seccomp:
        # without seccomp a program could fork a daemon: adopt orphans so they can be killed
        ctypes.CDLL(None).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    isolate_server(plan, strict=True)
    return plan, layers


def _reap_strays(known: set[int]) -> None:
    """Kill and reap children this process did not fork (orphans it adopted as subreaper)."""
    try:
        with open(f"/proc/{os.getpid()}/task/{os.getpid()}/children") as handle:
            children = [int(p) for p in handle.read().split()]
    except OSError:
        return
    for pid in children:
        if pid not in known:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except OSError:
                pass


def _preload(names: list[str]) -> list[str]:
    loaded = []
    for name in names:
        try:
            importlib.import_module(name)
            loaded.append(name)
        except Exception:  # noqa: BLE001 - a missing optional module just is not preloaded
            pass
    return loaded


def main() -> None:
    """Entry point of the fork server's interpreter: ``sys.argv[2]`` is its end of the socket
    to the zygote, whose first message is the settings (see ``Zygote.start``)."""
    sock = socket.socket(fileno=int(sys.argv[2]))
    try:
        settings = pickle.loads(sock.recv(_MAX_MESSAGE))
    except (OSError, EOFError, pickle.UnpicklingError):
        os._exit(1)
    try:
        serve(sock, settings)
    finally:
        os._exit(1)  # serve never returns; nor does an error in it reach the zygote's stderr


def serve(sock: socket.socket, settings: dict[str, Any]) -> None:
    """Run the fork server until the zygote closes ``sock``. Never returns.

    First imports ``settings["preload"]`` and sends ``("layers", dict, preloaded)``; then
    forks a candidate process for each ``("spawn", slot_id, workdir)`` (with four fds: request
    read end, response write end, stdout and stderr memfds), answering ``("spawn_failed",
    slot_id, reason)`` if it cannot and ``("exited", slot_id, wait_status)`` when the process
    ends, and kills the process group of the candidate of ``("kill", slot_id)``.
    """
    privileges.set_process_name("grpo-forkserver")
    # Signal dispositions every candidate needs, set once here and inherited through fork
    # (each signal.signal call in a candidate would cost it ~20 copy-on-write faults). Python
    # ignores SIGXFSZ; restored, a program that writes past its file-size limit (1 GB to
    # stdout) is stopped at the limit instead of catching EFBIG and going on.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGXFSZ):
        signal.signal(signum, signal.SIG_DFL)
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    preloaded = _preload(settings["preload"])  # before isolation: as the zygote's user
    # compile() creates the ~120 AST node types on its first call in a process (1 ms and 150
    # copy-on-write faults in every candidate process that compiles its program): once, here.
    importlib.import_module("_ast")
    try:
        plan, layers = _prepare(settings)
    except OSError as exc:
        error = {"probe_error": f"the fork server could not isolate itself: {exc}"}
        sock.send(pickle.dumps(("layers", error, preloaded)))
        os._exit(1)
    sock.send(pickle.dumps(("layers", layers, preloaded)))
    candidate.rehearse()
    # everything imported and allocated so far is frozen: a collection in a candidate process
    # then never walks (and copies) those pages
    gc.collect()
    gc.freeze()

    # The loop is lean on purpose: after each fork, every page this process writes costs it a
    # copy-on-write fault, so it uses epoll and recvmsg directly (not selectors and
    # socket.recv_fds, whose Python-level objects it would write after every fork).
    poller = select.epoll()
    server_fd = sock.fileno()
    poller.register(server_fd, select.EPOLLIN)
    running: dict[int, tuple[int, int]] = {}  # slot_id -> (pid, pidfd)
    slot_of: dict[int, int] = {}  # pidfd -> slot_id
    while True:
        for fd, _ in poller.poll():
            if fd != server_fd:  # a candidate process exited
                slot_id = slot_of.pop(fd)
                pid, _ = running.pop(slot_id)
                poller.unregister(fd)
                os.close(fd)
                _, status = os.waitpid(pid, 0)
                _kill_group(pid, reaped=True)  # whatever it left in its group (when fork was allowed)
                sock.send(pickle.dumps(("exited", slot_id, status)))
                if not plan.seccomp:
                    _reap_strays({p for p, _ in running.values()})
                continue
            try:
                data, ancillary, _, _ = sock.recvmsg(_MAX_MESSAGE, _FDS_SPACE)
            except OSError:
                data, ancillary = b"", []
            fds = array("i")
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
            if not data:  # the zygote is gone: take every candidate with us
                for pid, _ in running.values():
                    _kill_group(pid)
                os._exit(0)
            message = pickle.loads(data)
            if message[0] == "spawn":
                _, slot_id, workdir = message
                try:
                    pid = os.fork()
                except OSError as exc:  # RLIMIT_NPROC or memory: the zygote retries later
                    for received in fds:
                        os.close(received)
                    sock.send(pickle.dumps(("spawn_failed", slot_id, str(exc))))
                    continue
                if pid == 0:  # the epoll descriptor goes with the others in close_fds_except
                    _candidate_main(plan, list(fds), workdir)
                for received in fds:
                    os.close(received)
                pidfd = os.pidfd_open(pid)
                running[slot_id] = (pid, pidfd)
                slot_of[pidfd] = slot_id
                poller.register(pidfd, select.EPOLLIN)
            elif message[0] == "kill" and message[1] in running:
                _kill_group(running[message[1]][0])
