"""Identity and namespace layers: an unprivileged uid, no capabilities, no network.

- As root, every candidate process drops to an unprivileged uid/gid (``nobody``) with no
  supplementary groups, so file permissions protect the host and RLIMIT_NPROC (ignored for
  real root) takes effect.
- The zygote enters a fresh network namespace once at start-up (as root directly; as an
  ordinary user through a user namespace where the host allows them): its descendants see
  only an unconfigured loopback device. One namespace for all jobs, because creating one
  per job costs about a millisecond.
- In a user namespace the candidate starts with full capabilities *inside* it; they are
  cleared before the candidate's code runs.
"""

from __future__ import annotations

import ctypes
import os
import pwd

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
_MS_RDONLY = 0x1
_MS_NOSUID = 0x2
_MS_NODEV = 0x4
_MS_BIND = 0x1000
_MS_REC = 0x4000
_MS_PRIVATE = 1 << 18
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_SYS_CAPSET = 126  # x86_64
_NOBODY_ID = 65534  # the conventional overflow uid/gid, used when there is no "nobody" entry

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


_PR_SET_NAME = 15


def set_process_name(name: str) -> None:
    """Name the calling process (as ``ps``/``top`` show it), e.g. ``grpo-candidate``."""
    _libc.prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)


def unprivileged_ids() -> tuple[int, int]:
    """The uid and gid of ``nobody`` (65534 where the account does not exist)."""
    try:
        entry = pwd.getpwnam("nobody")
        return entry.pw_uid, entry.pw_gid
    except KeyError:
        return _NOBODY_ID, _NOBODY_ID


def drop_to(uid: int, gid: int) -> None:
    """Irrevocably become ``uid:gid`` with no supplementary groups (requires root)."""
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise OSError("failed to drop the user id")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


_CapDataPair = _CapData * 2


def clear_capabilities() -> None:
    """Drop every capability of the calling thread (effective, permitted, inheritable)."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = _CapDataPair()
    _check(_libc.syscall(ctypes.c_long(_SYS_CAPSET), ctypes.byref(header), ctypes.byref(data)), "capset")


def _write(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


def enter_network_namespace() -> str:
    """Move the calling (single-threaded) process into a new, empty network namespace.

    Returns how: ``"netns"`` (as root) or ``"userns+netns"`` (an ordinary user, through a new
    user namespace that maps the caller's own uid and gid).

    :raises OSError: the host forbids it (no privileges and no user namespaces).
    """
    if os.geteuid() == 0:
        _check(_libc.unshare(_CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        return "netns"
    uid, gid = os.geteuid(), os.getegid()
    _check(_libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET), "unshare(CLONE_NEWUSER|CLONE_NEWNET)")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")
    return "userns+netns"


def mount_scratch_tmpfs(path: str, size: int) -> None:
    """In a new mount namespace, mount a tmpfs of ``size`` bytes on ``path``: the working
    directories live there, so programs together can never write more than ``size`` (they get
    ENOSPC) and nothing they write touches the host's disk. Needs root or a user namespace.

    :raises OSError: the host forbids it.
    """
    _check(_libc.unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _check(_libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None), "mount(MS_PRIVATE)")
    options = f"size={int(size)},mode=0711".encode()
    _check(_libc.mount(b"tmpfs", os.fsencode(path), b"tmpfs", _MS_NOSUID | _MS_NODEV, options), "mount(tmpfs)")


def hide_with_mounts(paths: list[str]) -> list[str]:
    """In a new mount namespace, cover each path with an empty read-only tmpfs (directories)
    or a bind mount of /dev/null (files). Needs root or a user namespace; returns the paths
    hidden. Preferred to Landlock for hiding: it costs a job nothing (see forkserver._prepare).

    :raises OSError: the host forbids a private mount namespace.
    """
    _check(_libc.unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _check(_libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None), "mount(MS_PRIVATE)")
    hidden = []
    for path in paths:
        target = os.fsencode(path)
        if os.path.isdir(path):
            rc = _libc.mount(b"tmpfs", target, b"tmpfs", _MS_RDONLY | _MS_NOSUID | _MS_NODEV, b"size=4k,mode=0555")
        elif os.path.exists(path):
            rc = _libc.mount(b"/dev/null", target, None, _MS_BIND, None)
        else:
            continue
        if rc == 0:
            hidden.append(path)
    return hidden
