"""Run one benchmark run in a fresh Python process and read back its result and peak memory.

A process's peak resident memory (``ru_maxrss``) is a high-water mark that never goes down,
so two runs in one process would share it, and the second would also inherit whatever the
first left imported or cached. Each run therefore gets its own interpreter: the script
re-invokes itself as ``python SCRIPT --worker SPEC.json``; the child runs the job, then
records ``getrusage(RUSAGE_SELF)`` (its own peak) and ``getrusage(RUSAGE_CHILDREN)`` (the
largest helper process it waited for, e.g. a verifier worker) next to the job's result.
"""

from __future__ import annotations

import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any

#: ``ru_maxrss`` is in KiB on Linux (bytes on macOS).
_RSS_UNIT = 1 if sys.platform == "darwin" else 1024


def peak_rss_mib(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident set size of this process (or its waited-for children), in MiB."""
    return resource.getrusage(who).ru_maxrss * _RSS_UNIT / 2**20


def run_isolated(script: str | os.PathLike[str], spec: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
    """Run ``script --worker SPEC`` in a fresh interpreter and return the dict it wrote.

    :param script: the benchmark script (it must call :func:`worker_main` on ``--worker``).
    :param spec: JSON-serialisable description of the run, passed to the worker function.
    :param timeout: seconds before the child is killed (None: no limit).
    :raises RuntimeError: when the child fails; its stderr's tail is in the message.
    """
    with tempfile.TemporaryDirectory(prefix="grpo-bench-") as tmp:
        spec_path, result_path = pathlib.Path(tmp) / "spec.json", pathlib.Path(tmp) / "result.json"
        spec_path.write_text(json.dumps({**spec, "_result_path": str(result_path)}), encoding="utf-8")
        proc = subprocess.run(
            [sys.executable, str(script), "--worker", str(spec_path)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0 or not result_path.exists():
            tail = "\n".join(proc.stderr.strip().splitlines()[-25:])
            raise RuntimeError(f"benchmark worker {spec.get('kind', '?')} failed (exit {proc.returncode}):\n{tail}")
        return json.loads(result_path.read_text(encoding="utf-8"))


def worker_main(spec_path: str, job: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """The child's side of :func:`run_isolated`: run ``job(spec)``, add the peak memory, write JSON."""
    spec = json.loads(pathlib.Path(spec_path).read_text(encoding="utf-8"))
    result = job(spec)
    result["peak_rss_mib"] = peak_rss_mib(resource.RUSAGE_SELF)
    result["peak_rss_children_mib"] = peak_rss_mib(resource.RUSAGE_CHILDREN)
    pathlib.Path(spec["_result_path"]).write_text(json.dumps(result), encoding="utf-8")
