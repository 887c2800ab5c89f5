"""Applying the isolation layers to a freshly forked candidate process.

:func:`isolate` runs in the child between ``fork`` and the first line of candidate code. In
*probe* mode (once, at start-up) each layer is tried and the ones the host allows are
recorded; in *strict* mode (every job) the probed plan is applied and any failure aborts the
job: a layer that worked at start-up never silently disappears later.
"""

from __future__ import annotations

import ctypes
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from grpo_envs.sandbox import landlock, privileges, seccomp
from grpo_envs.sandbox.limits import ResourceLimits, apply_limits

_PR_SET_KEEPCAPS = 8
_CAP_DAC_READ_SEARCH = 2
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_SYS_CAPSET = 126


@dataclass
class IsolationPlan:
    """Which layers to apply to each candidate process (decided at start-up).

    :param limits: the rlimits.
    :param ids: ``(uid, gid)`` to drop to (when started as root), else None.
    :param user_namespace: the zygote runs in its own user namespace (capabilities inside it
        must be cleared).
    :param landlock_abi: Landlock ABI version to use, 0 for none.
    :param read_layer_fd: the shared Landlock read layer (see :mod:`~grpo_envs.sandbox.landlock`).
    :param seccomp: install the seccomp filter.
    :param keep_read_capability: as root with Landlock active, keep CAP_DAC_READ_SEARCH after
        dropping the uid, so the unprivileged process can still import standard-library
        modules from an interpreter installed under a private home (e.g. ``/root/.pyenv``);
        Landlock still decides which paths are readable.
    """

    limits: ResourceLimits = field(default_factory=ResourceLimits)
    ids: tuple[int, int] | None = None
    user_namespace: bool = False
    landlock_abi: int = 0
    read_layer_fd: int = -1
    seccomp: bool = True
    keep_read_capability: bool = False
    compiled_filter: seccomp.CompiledFilter | None = None


#: Above the highest descriptor the sandbox's processes ever hold open.
_FD_CEILING = 1 << 20


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


def isolate(plan: IsolationPlan, workdir: str, timeout: float, *, strict: bool) -> dict[str, Any]:
    """Apply ``plan`` to the calling process; returns the layers applied.

    The caller has already called ``setsid`` and arranged its file descriptors.

    :raises OSError: in strict mode, when any planned layer fails.
    """
    applied: dict[str, Any] = {}

    def attempt(name: str, value: Any, action: Any) -> None:
        try:
            action()
            applied[name] = value
        except OSError:
            applied[name] = False
            if strict:
                raise

    os.chdir(workdir)
    os.environ.clear()
    os.environ.update({"HOME": workdir, "TMPDIR": workdir, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    tempfile = sys.modules.get("tempfile")
    if tempfile is not None:
        tempfile.tempdir = workdir  # the zygote cached its own temporary directory
    applied["scrubbed_env"] = True
    applied["private_workdir"] = True
    applied["rlimits"] = apply_limits(
        plan.limits, timeout, nproc=plan.ids is not None or plan.user_namespace
    )
    if plan.ids is not None:
        uid, gid = plan.ids
        if plan.keep_read_capability and plan.landlock_abi:
            attempt("unprivileged_uid", uid, lambda: _drop_keeping_read_capability(uid, gid))
        else:
            attempt("unprivileged_uid", uid, lambda: privileges.drop_to(uid, gid))
    elif plan.user_namespace:
        attempt("capabilities_cleared", True, privileges.clear_capabilities)
    if plan.landlock_abi:
        def restrict() -> None:
            landlock.no_new_privs()
            landlock.restrict(plan.landlock_abi, plan.read_layer_fd, workdir)
        attempt("landlock", plan.landlock_abi, restrict)
    if plan.read_layer_fd >= 0:
        os.close(plan.read_layer_fd)
    if plan.seccomp:
        compiled = plan.compiled_filter
        attempt("seccomp", True, lambda: compiled.install(os.getpid()) if compiled else seccomp.install_filter(os.getpid()))
    sys.dont_write_bytecode = True
    return applied
