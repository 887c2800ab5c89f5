"""A seccomp-BPF syscall filter, built by hand and installed through ctypes (no dependency).

What it denies to the candidate's process (the call fails with EPERM, the program sees an
``OSError``/``PermissionError`` and keeps running):

- new programs and processes: ``execve``, ``execveat``, ``fork``, ``vfork``, and ``clone``
  without ``CLONE_THREAD`` (threads still work; ``clone3`` answers ENOSYS so that glibc falls
  back to ``clone``, whose flags a filter can inspect);
- all ``socket()`` calls (no network, no connecting to local daemons' Unix sockets);
- signals to any process but itself (``kill``, ``tgkill``, ``rt_*sigqueueinfo`` are checked
  against the process's own pid, which is written into the filter), ``pidfd_*``;
- leaving its session or process group (``setsid``, ``setpgid``), so a timeout's kill
  always reaches it;
- debugging and reading other processes (``ptrace``, ``process_vm_readv/writev``, ``kcmp``);
- namespaces, mounts and other kernel attack surface (``unshare``, ``setns``, ``mount``,
  ``bpf``, ``perf_event_open``, ``userfaultfd``, ``io_uring_*``, ``keyctl``,
  ``open_by_handle_at``, ...).

Syscalls made through another ABI (32-bit ``int 0x80``) kill the process; x32 numbers are
denied. Only x86_64 is supported: elsewhere :func:`seccomp_supported` is False and the layer
is reported inactive.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import sys
from typing import Any

# Linux uapi constants (linux/filter.h, linux/seccomp.h, linux/audit.h, linux/prctl.h).
_BPF_LD_W_ABS = 0x20
_BPF_JEQ_K = 0x15
_BPF_JGE_K = 0x35
_BPF_JSET_K = 0x45
_BPF_RET_K = 0x06
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
_RET_ALLOW = 0x7FFF0000
_AUDIT_ARCH_X86_64 = 0xC000003E
_X32_SYSCALL_BIT = 0x40000000
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_OFFSET_NR = 0
_OFFSET_ARCH = 4


def _arg_low(index: int) -> int:
    """Offset of the low 32 bits of syscall argument ``index`` in ``struct seccomp_data``."""
    return 16 + 8 * index


_CLONE_THREAD = 0x00010000
_CLONE_NEW_NAMESPACES = 0x7E020000  # NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET

# x86_64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl).
#: Denied to the candidate only: the fork server itself needs them (it forks, opens pidfds,
#: signals its children; each child calls setsid before its own filter goes on).
_DENIED_TO_CANDIDATE = {
    "fork": 57,
    "vfork": 58,
    "execve": 59,
    "execveat": 322,
    "tkill": 200,
    "pidfd_send_signal": 424,
    "pidfd_open": 434,
    "pidfd_getfd": 438,
    "setsid": 112,
    "setpgid": 109,
}
#: Denied to the fork server and (inherited) every candidate: nothing of it is needed.
_DENIED_TO_BOTH = {
    "socket": 41,
    "ptrace": 101,
    "process_vm_readv": 310,
    "process_vm_writev": 311,
    "kcmp": 312,
    "unshare": 272,
    "setns": 308,
    "mount": 165,
    "umount2": 166,
    "pivot_root": 155,
    "chroot": 161,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "mount_setattr": 442,
    "bpf": 321,
    "perf_event_open": 298,
    "userfaultfd": 323,
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "keyctl": 250,
    "add_key": 248,
    "request_key": 249,
    "name_to_handle_at": 303,
    "open_by_handle_at": 304,
    "mknod": 133,
    "mknodat": 259,
    "acct": 163,
    "swapon": 167,
    "swapoff": 168,
    "reboot": 169,
    "kexec_load": 246,
    "kexec_file_load": 320,
    "init_module": 175,
    "finit_module": 313,
    "delete_module": 176,
}
_CLONE, _CLONE3 = 56, 435
_KILL, _TGKILL, _RT_SIGQUEUEINFO, _RT_TGSIGQUEUEINFO = 62, 234, 129, 297


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> tuple[int, int, int, int]:
    return (code, jt, jf, k)


#: Which rules :func:`build_filter` includes.
PARTS = ("all", "server", "candidate")


def build_filter(own_pid: int, part: str = "all") -> list[tuple[int, int, int, int]]:
    """The BPF program as ``(code, jt, jf, k)`` tuples; ``own_pid`` is the only process the
    filtered process may signal.

    :param part: ``"all"`` (every rule), ``"server"`` (the rules the fork server can live
        with, installed once on itself and inherited by every candidate), or ``"candidate"``
        (the rest, installed on each candidate process: a short filter is cheap to attach).
    """
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")
    eperm = _RET_ERRNO | errno.EPERM
    prog = [
        _insn(_BPF_LD_W_ABS, _OFFSET_ARCH),
        _insn(_BPF_JEQ_K, _AUDIT_ARCH_X86_64, jt=1, jf=0),
        _insn(_BPF_RET_K, _RET_KILL_PROCESS),
        _insn(_BPF_LD_W_ABS, _OFFSET_NR),
        _insn(_BPF_JGE_K, _X32_SYSCALL_BIT, jt=0, jf=1),
        _insn(_BPF_RET_K, eperm),
    ]

    def block(nr: int, body: list[tuple[int, int, int, int]]) -> None:
        # if nr matches, run body (which always returns); otherwise skip over it
        prog.append(_insn(_BPF_JEQ_K, nr, jt=0, jf=len(body)))
        prog.extend(body)

    denied = {}
    if part in ("all", "server"):
        denied.update(_DENIED_TO_BOTH)
    if part in ("all", "candidate"):
        denied.update(_DENIED_TO_CANDIDATE)
    for nr in sorted(denied.values()):
        block(nr, [_insn(_BPF_RET_K, eperm)])
    if part == "server":
        prog.append(_insn(_BPF_RET_K, _RET_ALLOW))
        return prog
    block(_CLONE3, [_insn(_BPF_RET_K, _RET_ERRNO | errno.ENOSYS)])
    block(
        _CLONE,
        [
            _insn(_BPF_LD_W_ABS, _arg_low(0)),
            _insn(_BPF_JSET_K, _CLONE_NEW_NAMESPACES, jt=2, jf=0),
            _insn(_BPF_JSET_K, _CLONE_THREAD, jt=0, jf=1),
            _insn(_BPF_RET_K, _RET_ALLOW),
            _insn(_BPF_RET_K, eperm),
        ],
    )
    for nr in (_KILL, _TGKILL, _RT_SIGQUEUEINFO, _RT_TGSIGQUEUEINFO):
        # pid_t is 32 bits: the kernel reads only the low half of the argument
        block(
            nr,
            [
                _insn(_BPF_LD_W_ABS, _arg_low(0)),
                _insn(_BPF_JEQ_K, own_pid & 0xFFFFFFFF, jt=0, jf=1),
                _insn(_BPF_RET_K, _RET_ALLOW),
                _insn(_BPF_RET_K, eperm),
            ],
        )
    prog.append(_insn(_BPF_RET_K, _RET_ALLOW))
    return prog


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def seccomp_supported() -> bool:
    """Whether this module can build a filter for this machine (x86_64 Linux)."""
    return sys.platform.startswith("linux") and os.uname().machine == "x86_64"


_libc = ctypes.CDLL(None, use_errno=True)
_PID_PLACEHOLDER = 0x7FFFFFFE  # larger than any pid_max


class CompiledFilter:
    """The filter assembled once (in the fork server); each candidate process only writes
    its own pid into it before installing it, which keeps the per-job cost to two syscalls.

    The ``sock_fprog`` and its buffer are allocated here too: a forked process pays a
    copy-on-write fault for every page it touches, so the install touches as few as it can.
    """

    def __init__(self, part: str = "all") -> None:
        if not seccomp_supported():
            raise OSError(errno.ENOSYS, "seccomp filter is only built for x86_64 Linux")
        prog = build_filter(_PID_PLACEHOLDER, part)
        self.length = len(prog)
        raw = b"".join(struct.pack("<HBBI", code, jt, jf, k) for code, jt, jf, k in prog)
        self.pid_offsets = [8 * i + 4 for i, insn in enumerate(prog) if insn[3] == _PID_PLACEHOLDER]
        self._buffer = ctypes.create_string_buffer(raw, len(raw))
        self._fprog = _SockFprog(self.length, ctypes.cast(self._buffer, ctypes.c_void_p))
        self._fprog_ref = ctypes.byref(self._fprog)

    def install(self, own_pid: int) -> None:
        """Install with ``own_pid`` as the only process this one may signal (see :func:`install_filter`)."""
        for offset in self.pid_offsets:
            struct.pack_into("<I", self._buffer, offset, own_pid & 0xFFFFFFFF)
        _set_filter(self._fprog_ref)


def install_filter(own_pid: int, part: str = "all") -> None:
    """Install the filter (see :func:`build_filter`) on the calling thread and every thread
    it creates later. Filters stack: a later one can only deny more.

    Sets ``PR_SET_NO_NEW_PRIVS`` first, which also stops set-uid programs from regaining
    privileges.

    :raises OSError: the kernel refused (no seccomp support, or a stricter outer filter).
    """
    CompiledFilter(part).install(own_pid)


def _set_filter(fprog_ref: Any) -> None:
    libc = _libc
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_NO_NEW_PRIVS) failed: {errno.errorcode.get(err, err)}")
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, fprog_ref, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_SECCOMP) failed: {errno.errorcode.get(err, err)}")
