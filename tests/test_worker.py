"""TimeoutWorker: a hung computation is killed at its deadline and the worker keeps serving."""

from __future__ import annotations

import math
import os
import time

import pytest

from grpo_envs.verify.worker import TimeoutWorker, WorkerError, WorkerTimeout


@pytest.fixture(scope="module")
def worker():
    w = TimeoutWorker()
    yield w
    w.close()


def test_returns_results(worker: TimeoutWorker) -> None:
    assert worker.call(math.factorial, 10, timeout=30.0) == 3628800


def test_hang_is_killed_at_the_deadline_and_the_next_call_works(worker: TimeoutWorker) -> None:
    worker.call(pow, 2, 2, timeout=30.0)  # make sure the child is up before timing
    pid_before = worker.pid
    start = time.monotonic()
    with pytest.raises(WorkerTimeout):
        worker.call(time.sleep, 30, timeout=0.5)
    assert time.monotonic() - start < 0.5 + 0.5
    assert worker.pid != pid_before  # killed and replaced
    with pytest.raises(ProcessLookupError):
        os.kill(pid_before, 0)
    assert worker.call(pow, 3, 4, timeout=30.0) == 81


def test_a_raising_function_reports_its_traceback(worker: TimeoutWorker) -> None:
    with pytest.raises(WorkerError, match="ZeroDivisionError"):
        worker.call(divmod, 1, 0, timeout=30.0)
    assert worker.call(divmod, 7, 2, timeout=30.0) == (3, 1)


def test_memory_is_capped() -> None:
    small = TimeoutWorker(memory_limit=512 * 1024**2)
    try:
        with pytest.raises(MemoryError):
            small.call(bytearray, 2 * 1024**3, timeout=30.0)
        assert small.call(len, "still alive", timeout=30.0) == 11
    finally:
        small.close()


def test_lambdas_are_refused_with_a_clear_error(worker: TimeoutWorker) -> None:
    with pytest.raises(TypeError, match="module-level"):
        worker.call(lambda: 1, timeout=1.0)


def test_close_then_reuse() -> None:
    w = TimeoutWorker()
    assert w.call(abs, -2, timeout=30.0) == 2
    w.close()
    w.close()
    assert w.pid is None
    assert w.call(abs, -3, timeout=30.0) == 3
    w.close()


@pytest.mark.parametrize("via_stdin", [False, True])
def test_works_from_an_unguarded_script_and_from_stdin(tmp_path, via_stdin: bool) -> None:
    """The child must not re-run the caller's main script (multiprocessing's spawn would)."""
    import subprocess
    import sys

    script = (
        "from grpo_envs.verify.worker import TimeoutWorker\n"
        "print('script body ran')\n"
        "print(TimeoutWorker().call(max, 3, 9, timeout=30.0))\n"
    )
    if via_stdin:
        out = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, timeout=120)
    else:
        path = tmp_path / "unguarded.py"
        path.write_text(script)
        out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["script body ran", "9"]
