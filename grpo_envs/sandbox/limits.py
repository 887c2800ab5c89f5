"""Resource limits (rlimits) of the candidate's process."""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024**2


@dataclass(frozen=True)
class ResourceLimits:
    """rlimits applied to every candidate process.

    :param memory: address-space cap (RLIMIT_AS) in bytes; allocating past it raises
        MemoryError in the candidate. The forked process starts at roughly the size of the
        interpreter with its pre-imported modules (~50 MiB), so keep it well above that.
    :param file_size: largest file the candidate may write, in bytes (RLIMIT_FSIZE). It also
        caps what it can write to stdout/stderr (memory-backed files): past it the process is
        killed by SIGXFSZ.
    :param open_files: most open file descriptors (RLIMIT_NOFILE).
    :param processes: RLIMIT_NPROC: most processes/threads of the candidate's user id. Fork is
        denied by seccomp anyway; this bounds thread bombs. Applied only where it is meaningful
        (after dropping to an unprivileged uid, or inside a fresh user namespace).
    :param cpu_margin: RLIMIT_CPU is the job's timeout rounded up plus this many seconds; the
        wall-clock timeout normally fires first, CPU time is the backstop.
    :param disk: bytes that all working directories together may hold (a private tmpfs, where
        the host allows mounting one: as root or in a user namespace).
    """

    memory: int = 1024 * MiB
    file_size: int = 16 * MiB
    open_files: int = 64
    processes: int = 256
    cpu_margin: int = 1
    disk: int = 256 * MiB
