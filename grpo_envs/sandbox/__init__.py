"""The code-execution sandbox: run untrusted programs against unit tests, isolated.

Quick start::

    from grpo_envs.sandbox import FunctionTests, Sandbox, SandboxJob

    with Sandbox() as sandbox:
        result = sandbox.run(SandboxJob("def f(x):\\n    return 2 * x\\n",
                                        FunctionTests(tests=("assert f(2) == 4",))))
        print(result.status, result.num_passed, result.layers)

Layers (reported in ``result.layers``; each one is probed at start-up and left out where
the host forbids it): ``process_group`` (own session, killed as a group on timeout),
``rlimits`` (address space, CPU, file size, open files, core dumps, processes),
``unprivileged_uid`` (as root), ``seccomp`` (no fork/exec, sockets, signals to others),
``landlock`` (file-system reads/writes, TCP, signals), ``network_namespace``,
``hidden_paths`` (test files unreadable), ``private_workdir`` (removed afterwards),
``workdir_quota`` (working directories on a size-limited private tmpfs),
``scrubbed_env`` and ``separate_test_process`` (tests never run in the program's process).
This package uses only the standard library.
"""

from grpo_envs.sandbox.codec import Opaque
from grpo_envs.sandbox.job import DEFAULT_TIMEOUT, FunctionTests, IOTests, SandboxJob
from grpo_envs.sandbox.limits import ResourceLimits
from grpo_envs.sandbox.pool import (
    DEFAULT_PRELOAD,
    Sandbox,
    SandboxError,
    default_hidden_paths,
    default_sandbox,
)
from grpo_envs.sandbox.result import (
    ERROR,
    FAILED,
    KILLED,
    MEMORY,
    NOT_RUN,
    OK,
    PASSED,
    STATUSES,
    TEST_ERROR,
    TEST_FAILED,
    TIMEOUT,
    SandboxResult,
    TestOutcome,
)

__all__ = [
    "DEFAULT_PRELOAD",
    "DEFAULT_TIMEOUT",
    "ERROR",
    "FAILED",
    "KILLED",
    "MEMORY",
    "NOT_RUN",
    "OK",
    "PASSED",
    "STATUSES",
    "TEST_ERROR",
    "TEST_FAILED",
    "TIMEOUT",
    "FunctionTests",
    "IOTests",
    "Opaque",
    "ResourceLimits",
    "Sandbox",
    "SandboxError",
    "SandboxJob",
    "SandboxResult",
    "TestOutcome",
    "default_hidden_paths",
    "default_sandbox",
]
