"""Landlock (Linux >= 5.13): unprivileged file-system, TCP and signal restrictions.

Two layers are stacked on the candidate's process (a process can only ever add layers, and
every layer must allow an access):

1. a *read* layer, built once when the sandbox starts and shared by every candidate: reading
   is allowed only below the interpreter's library directories and the sandbox's scratch
   area. Paths the tests live in (``hidden``) are carved out of those directories, so the
   HumanEval data file inside site-packages, this project's task files and the project tree
   cannot be opened;
2. a *write* layer, built per candidate: creating, writing, renaming and deleting files is
   allowed only inside its own working directory; with ABI >= 4 every TCP bind/connect is
   denied, and with ABI >= 6 signals and abstract Unix sockets cannot reach any process
   outside the sandbox.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from collections.abc import Iterable, Sequence

_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446  # same on x86_64 and arm64
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1

EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5
MAKE_CHAR = 1 << 6
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
MAKE_SOCK = 1 << 9
MAKE_FIFO = 1 << 10
MAKE_BLOCK = 1 << 11
MAKE_SYM = 1 << 12
REFER = 1 << 13  # ABI 2
TRUNCATE = 1 << 14  # ABI 3
IOCTL_DEV = 1 << 15  # ABI 5
NET_BIND_TCP = 1 << 0  # ABI 4
NET_CONNECT_TCP = 1 << 1  # ABI 4
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1  # ABI 6

_FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
READ_RIGHTS = EXECUTE | READ_FILE | READ_DIR


def _write_rights(abi: int) -> int:
    rights = WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_CHAR | MAKE_DIR | MAKE_REG | MAKE_SOCK
    rights |= MAKE_FIFO | MAKE_BLOCK | MAKE_SYM
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    if abi >= 5:
        rights |= IOCTL_DEV
    return rights


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


_libc = ctypes.CDLL(None, use_errno=True)


def _syscall(*args: object) -> int:
    result = _libc.syscall(*args)
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(result)


def abi_version() -> int:
    """The kernel's Landlock ABI version, or 0 when Landlock is unavailable or disabled."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        return _syscall(
            ctypes.c_long(_SYS_CREATE_RULESET), None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION)
        )
    except OSError:
        return 0


def _create_ruleset(abi: int, fs: int, net: int = 0, scoped: int = 0) -> int:
    attr = _RulesetAttr(fs, net if abi >= 4 else 0, scoped if abi >= 6 else 0)
    size = 24 if abi >= 6 else (16 if abi >= 4 else 8)
    return _syscall(ctypes.c_long(_SYS_CREATE_RULESET), ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))


def _add_path_rule(ruleset_fd: int, path: str, access: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # vanished or unreadable: nothing to allow
    try:
        if not os.path.isdir(path):
            access &= _FILE_RIGHTS
        attr = _PathBeneathAttr(access, fd)
        _syscall(
            ctypes.c_long(_SYS_ADD_RULE),
            ctypes.c_int(ruleset_fd),
            ctypes.c_int(_RULE_PATH_BENEATH),
            ctypes.byref(attr),
            ctypes.c_uint32(0),
        )
    finally:
        os.close(fd)


def _restrict_self(ruleset_fd: int) -> None:
    _syscall(ctypes.c_long(_SYS_RESTRICT_SELF), ctypes.c_int(ruleset_fd), ctypes.c_uint32(0))


def is_within(path: str, directory: str) -> bool:
    """Whether ``path`` is ``directory`` or below it (both already resolved: no links)."""
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def carve(roots: Iterable[str], hidden: Sequence[str]) -> list[str]:
    """The paths to allow so that everything below ``roots`` is reachable except ``hidden``.

    Landlock rules only grant, so a hidden directory inside an allowed one is cut out by
    allowing each of its siblings instead, down the path to it. A rule on a symbolic link
    grants its target (the rule is added through ``open``, which follows it), so a link is
    carved as its target: a virtual environment's ``lib64 -> lib`` would otherwise grant
    ``lib`` whole, hidden directories included. Roots and link targets inside a directory
    already visited add no rule.
    """
    hidden_real = [os.path.realpath(h) for h in hidden]
    allowed: list[str] = []
    visited: set[str] = set()

    def visit(path: str) -> None:
        if path in visited:
            return
        visited.add(path)
        inside = [h for h in hidden_real if is_within(h, path)]
        if not inside:
            allowed.append(path)
            return
        if path in inside or not os.path.isdir(path):
            return
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            visit(os.path.realpath(entry.path) if entry.is_symlink() else entry.path)

    for root in roots:
        if os.path.exists(root):
            visit(os.path.realpath(root))
    return _outermost(allowed)


def _outermost(paths: list[str]) -> list[str]:
    """``paths`` without those below another one of them (their rules would grant nothing new)."""
    kept: set[str] = set()
    for path in sorted(set(paths), key=len):  # ancestors before descendants
        ancestor, parent = path, os.path.dirname(path)
        while parent != ancestor and parent not in kept:
            ancestor, parent = parent, os.path.dirname(parent)
        if parent == ancestor:  # reached "/" without meeting a kept ancestor
            kept.add(path)
    return sorted(kept)


def build_read_layer(abi: int, readable: Iterable[str], hidden: Sequence[str]) -> int:
    """Create the shared read layer; returns its ruleset file descriptor (kept open)."""
    fd = _create_ruleset(abi, READ_RIGHTS)
    for path in carve(readable, hidden):
        _add_path_rule(fd, path, READ_RIGHTS)
    return fd


def restrict(abi: int, read_layer_fd: int, workdir: str, writable_files: Sequence[str] = ("/dev/null",)) -> None:
    """Apply both layers to the calling process (needs ``PR_SET_NO_NEW_PRIVS`` or privileges).

    :raises OSError: the kernel refused.
    """
    _restrict_self(read_layer_fd)
    rights = _write_rights(abi)
    fd = _create_ruleset(abi, rights, NET_BIND_TCP | NET_CONNECT_TCP, SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL)
    try:
        _add_path_rule(fd, workdir, rights)
        for path in writable_files:
            _add_path_rule(fd, path, WRITE_FILE)
        _restrict_self(fd)
    finally:
        os.close(fd)


def no_new_privs() -> None:
    """Set ``PR_SET_NO_NEW_PRIVS``, which Landlock and seccomp require of unprivileged callers."""
    if _libc.prctl(38, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_NO_NEW_PRIVS) failed: {errno.errorcode.get(err, err)}")
