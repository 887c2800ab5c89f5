"""What a finished candidate process left behind: its output, the signal that ended it, its working directory."""

from __future__ import annotations

import os
import shutil
import signal
import stat
from typing import Any


def remove_tree(path: str) -> None:
    """Remove a working directory, even one the program made unwritable (chmod 000)."""
    try:
        os.rmdir(path)  # the common case: the program wrote nothing
        return
    except FileNotFoundError:
        return
    except OSError:
        pass

    top = os.path.normpath(path)

    def fix(_function: Any, target: str, _exc: Any) -> None:
        if os.path.normpath(target) == top:
            # ``path`` itself would not go (a mount point: the zygote's tmpfs): never touch the
            # directory that holds it (/tmp), which only its owner could then enter
            return
        try:
            os.chmod(os.path.dirname(target), stat.S_IRWXU)
            if os.path.isdir(target) and not os.path.islink(target):
                os.chmod(target, stat.S_IRWXU)
                shutil.rmtree(target, ignore_errors=True)
            else:
                os.unlink(target)
        except OSError:
            pass

    shutil.rmtree(path, onerror=fix)


def read_output(fd: int, limit: int) -> str:
    data = os.pread(fd, limit + 1, 0)
    text = data[:limit].decode("utf-8", "replace")
    return text + "\n[... output truncated]" if len(data) > limit else text


def name_of_signal(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


SIGNAL_MEANING = {
    "SIGXFSZ": "file or output size limit exceeded",
    "SIGXCPU": "CPU time limit exceeded",
    "SIGSEGV": "segmentation fault",
    "SIGSYS": "forbidden system call",
    "SIGKILL": "killed",
    "SIGABRT": "aborted",
}
