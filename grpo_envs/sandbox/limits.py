"""Resource limits (rlimits) of the candidate's process."""

from __future__ import annotations

import math
import resource
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

    def cpu_seconds(self, timeout: float) -> int:
        """RLIMIT_CPU for a job with this wall-clock timeout."""
        return math.ceil(timeout) + self.cpu_margin


def apply_limits(limits: ResourceLimits, timeout: float, *, nproc: bool, per_process: bool = True) -> list[str]:
    """Set the rlimits of the calling process; returns the names of those that were set.

    A limit the host forbids (a hard limit that is already lower) is lowered to that hard
    limit instead of failing.

    :param per_process: also set the CPU-time and open-file limits. The fork server leaves
        them to each candidate: it runs for hours and holds a descriptor per running job.
    """
    wanted = [
        ("as", resource.RLIMIT_AS, limits.memory),
        ("fsize", resource.RLIMIT_FSIZE, limits.file_size),
        ("core", resource.RLIMIT_CORE, 0),
    ]
    if per_process:
        wanted += [
            ("cpu", resource.RLIMIT_CPU, limits.cpu_seconds(timeout)),
            ("nofile", resource.RLIMIT_NOFILE, limits.open_files),
        ]
    if nproc:
        wanted.append(("nproc", resource.RLIMIT_NPROC, limits.processes))
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
