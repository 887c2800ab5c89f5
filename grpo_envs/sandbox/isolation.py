"""Applying the isolation layers: once to the fork server, then to each candidate process.

Everything that does not depend on the job is applied once, to the fork server itself,
before it forks any candidate: the scrubbed environment, most rlimits, the unprivileged uid,
cleared capabilities and the part of the seccomp filter the server can live with. Every
candidate process inherits them through ``fork``. What remains per candidate, between
``fork`` and its first line of code, is small: its own session, working directory and CPU
and descriptor limits, Landlock, and the seccomp rules that forbid forking and signalling.
Forked processes pay for every page they write (copy-on-write), so less Python run per
candidate is directly more jobs per second.

In *probe* mode (once, at start-up, in a throw-away child) each layer is tried and the ones
the host allows are recorded; in *strict* mode the probed plan is applied and any failure
aborts: a layer that worked at start-up never silently disappears later.
"""

from __future__ import annotations

import ctypes
import os
import resource
import sys
from typing import Any

from grpo_envs.sandbox import landlock, privileges, seccomp
from grpo_envs.sandbox.seccomp import CompiledFilter

_PR_SET_KEEPCAPS = 8
_CAP_DAC_READ_SEARCH = 2
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_SYS_CAPSET = 126
#: Above the highest descriptor the sandbox's processes ever hold open.
_FD_CEILING = 1 << 20
#: CPU-time backstop (seconds) of a warm candidate process; the harness lowers it to the
#: job's own limit before the program is compiled.
WARM_CPU_SECONDS = 600


class IsolationPlan:
    """Which layers to apply (decided at start-up). A plain class, not a dataclass: the fork
    server imports this module, and ``dataclasses`` would add 1.4 MiB to every candidate.

    :param limits: the rlimits applied once to the fork server: ``memory`` (RLIMIT_AS),
        ``file_size`` (RLIMIT_FSIZE) and ``processes`` (RLIMIT_NPROC), in the units of
        :class:`~grpo_envs.sandbox.ResourceLimits`.
    :param open_files: RLIMIT_NOFILE of each candidate (the server holds a descriptor per job).
    :param ids: ``(uid, gid)`` to drop to (when started as root), else None.
    :param user_namespace: the zygote runs in its own user namespace (capabilities inside it
        must be cleared).
    :param seccomp: install the seccomp filter.

    Set after probing: ``drop_in_server`` (drop the uid in the fork server once, rather than
    in every candidate; only safe when candidates cannot signal the server, which then runs
    as the same uid: seccomp's or Landlock's signal scoping must be active),
    ``landlock_abi`` (0 for none), ``read_layer_fd`` (the shared Landlock read layer, see
    :mod:`~grpo_envs.sandbox.landlock`), ``keep_read_capability`` (as root with Landlock
    active, keep CAP_DAC_READ_SEARCH after dropping the uid, so the unprivileged process can
    still import standard-library modules from an interpreter installed under a private home
    such as ``/root/.pyenv``; Landlock still decides which paths are readable) and
    ``candidate_filter`` (the candidate part of the seccomp filter, assembled once).
    """

    def __init__(
        self,
        limits: dict[str, int],
        open_files: int,
        ids: tuple[int, int] | None = None,
        user_namespace: bool = False,
        seccomp: bool = True,
    ) -> None:
        self.limits = limits
        self.open_files = open_files
        self.ids = ids
        self.user_namespace = user_namespace
        self.seccomp = seccomp
        self.drop_in_server = False
        self.landlock_abi = 0
        self.read_layer_fd = -1
        self.keep_read_capability = False
        self.candidate_filter: CompiledFilter | None = None


def _apply_server_limits(limits: dict[str, int], *, nproc: bool) -> list[str]:
    """Set the fork server's rlimits, inherited by every candidate; returns the names set. A
    limit the host forbids (a hard limit that is already lower) is lowered to that hard limit
    instead of failing. CPU time and open files are left to each candidate: the server runs
    for hours and holds a descriptor per running job."""
    wanted = [
        ("as", resource.RLIMIT_AS, limits["memory"]),
        ("fsize", resource.RLIMIT_FSIZE, limits["file_size"]),
        ("core", resource.RLIMIT_CORE, 0),
    ]
    if nproc:
        wanted.append(("nproc", resource.RLIMIT_NPROC, limits["processes"]))
    applied = []
    for name, which, value in wanted:
        try:
            _soft, hard = resource.getrlimit(which)
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            resource.setrlimit(which, (value, value))
            applied.append(name)
        except (ValueError, OSError):
            pass
    return applied


def close_fds_except(keep: set[int]) -> None:
    """Close every open file descriptor not in ``keep`` (other jobs' pipes included).

    ``os.closerange`` uses the ``close_range`` syscall where the kernel has it: one call per
    gap between kept descriptors, however many are open.
    """
    low = 0
    for fd in sorted(keep):
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, _FD_CEILING)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


_libc = ctypes.CDLL(None, use_errno=True)
_CapDataPair = _CapData * 2


def _drop_keeping_read_capability(uid: int, gid: int) -> None:
    libc = _libc
    if libc.prctl(_PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_KEEPCAPS)")
    privileges.drop_to(uid, gid)
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = _CapDataPair()
    bit = 1 << _CAP_DAC_READ_SEARCH
    data[0].effective = data[0].permitted = bit
    if libc.syscall(ctypes.c_long(_SYS_CAPSET), ctypes.byref(header), ctypes.byref(data)) != 0:
        raise OSError(ctypes.get_errno(), "capset")
    libc.prctl(_PR_SET_KEEPCAPS, 0, 0, 0, 0)


class _Attempts:
    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.applied: dict[str, Any] = {}

    def __call__(self, name: str, value: Any, action: Any) -> None:
        try:
            action()
            self.applied[name] = value
        except OSError:
            self.applied[name] = False
            if self.strict:
                raise


def _drop(plan: IsolationPlan, attempt: _Attempts) -> None:
    assert plan.ids is not None
    uid, gid = plan.ids
    if plan.keep_read_capability and plan.landlock_abi:
        attempt("unprivileged_uid", uid, lambda: _drop_keeping_read_capability(uid, gid))
    else:
        attempt("unprivileged_uid", uid, lambda: privileges.drop_to(uid, gid))


def isolate_server(plan: IsolationPlan, *, strict: bool) -> dict[str, Any]:
    """The job-independent layers, applied to the fork server (or the probe) once."""
    attempt = _Attempts(strict)
    os.environ.clear()
    os.environ.update({"HOME": "/nonexistent", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    attempt.applied["scrubbed_env"] = True
    nproc = plan.ids is not None or plan.user_namespace  # meaningless for a uid with other processes
    attempt.applied["rlimits"] = ["cpu", "nofile", *_apply_server_limits(plan.limits, nproc=nproc)]
    if plan.ids is not None and plan.drop_in_server:
        _drop(plan, attempt)
    elif plan.ids is None and plan.user_namespace:
        attempt("capabilities_cleared", True, privileges.clear_capabilities)
    if plan.landlock_abi:
        attempt("no_new_privs", True, landlock.no_new_privs)
    if plan.seccomp:
        attempt("seccomp", True, lambda: seccomp.install_filter(os.getpid(), "server"))
    return attempt.applied


def isolate_candidate(plan: IsolationPlan, workdir: str, *, strict: bool) -> dict[str, Any]:
    """The per-job layers, applied to a freshly forked candidate process.

    The caller has already called ``setsid`` and arranged its file descriptors.

    :raises OSError: in strict mode, when any planned layer fails.
    """
    attempt = _Attempts(strict)
    os.chdir(workdir)
    os.environ["HOME"] = os.environ["TMPDIR"] = workdir
    tempfile: Any = sys.modules.get("tempfile")  # only if the candidate's preloads imported it
    if tempfile is not None:
        tempfile.tempdir = workdir  # the fork server cached its own temporary directory
    attempt.applied["private_workdir"] = True
    resource.setrlimit(resource.RLIMIT_NOFILE, (plan.open_files, plan.open_files))
    resource.setrlimit(resource.RLIMIT_CPU, (WARM_CPU_SECONDS, WARM_CPU_SECONDS))
    if plan.ids is not None and not plan.drop_in_server:
        _drop(plan, attempt)
    if plan.landlock_abi:

        def restrict() -> None:
            landlock.no_new_privs()
            landlock.restrict(plan.landlock_abi, plan.read_layer_fd, workdir)

        attempt("landlock", plan.landlock_abi, restrict)
    if plan.read_layer_fd >= 0:
        os.close(plan.read_layer_fd)
    if plan.seccomp:
        compiled = plan.candidate_filter
        attempt(
            "seccomp",
            True,
            lambda: compiled.install(os.getpid()) if compiled else seccomp.install_filter(os.getpid(), "candidate"),
        )
    sys.dont_write_bytecode = True
    return attempt.applied
