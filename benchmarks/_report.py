"""Output helpers shared by the benchmark scripts: a CSV, a markdown table and a PNG per run,
plus a one-line description of the machine the numbers came from.

Absolute times mean nothing without the machine, so every markdown file a benchmark writes
ends with :func:`machine_description`; ratios measured in the same run are what carry over
to other machines.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import pathlib
import platform
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

#: Where the scripts write their CSV, markdown and PNG files unless told otherwise.
DEFAULT_OUT_DIR = pathlib.Path(__file__).resolve().parent / "results"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_name() -> str | None:
    """The first CUDA device's name when torch is already imported and sees one, else None
    (this never imports torch itself: the verifier benchmark must stay torch-free)."""
    import sys

    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return None
    return str(torch.cuda.get_device_name(0))


def machine_description() -> str:
    """When and where: UTC time, usable CPU cores and model, GPU (if any), load average."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    gpu = gpu_name()
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{now}; {cores} usable CPU cores ({cpu_model()}); "
        f"{'GPU: ' + gpu if gpu else 'no GPU'}; load average (1, 5, 15 min) {load}; "
        f"Python {platform.python_version()}"
    )


def write_csv(path: pathlib.Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write ``rows`` (dicts with the same keys, in order) as a CSV with a header line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        if not rows:
            return
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub markdown table; cells are written with ``str``."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_markdown(path: pathlib.Path, text: str, machine: str | None = None) -> None:
    """Write ``text`` and a closing line naming the machine it was measured on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    machine = machine or machine_description()
    path.write_text(f"{text.rstrip()}\n\nMeasured {machine}.\n", encoding="utf-8")


def publish(out_dir: pathlib.Path, stem: str, text: str, rows: Sequence[Mapping[str, Any]], started: str) -> None:
    """Print a run's report and write it as ``<stem>.md`` (with the load average at the end, for
    scripts that run long beside other jobs) and its rows as ``<stem>.csv``."""
    text += f"\n\nStarted {started}; load average (1, 5, 15 min) at the end {os.getloadavg()}.\n"
    print(text)
    write_csv(out_dir / f"{stem}.csv", rows)
    write_markdown(out_dir / f"{stem}.md", text)


def save_plot(
    path: pathlib.Path, draw: Callable[[Any], None], figsize: tuple[float, float] = (7, 4), ncols: int = 1
) -> bool:
    """Draw with ``draw(ax)`` on a fresh matplotlib figure and save it as a PNG.

    With ``ncols > 1`` the figure has that many panels side by side and ``draw`` gets the
    array of axes.

    :return: False (and nothing written) when matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(1, ncols, figsize=figsize)
    try:
        draw(ax)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
    return True


def fmt_ratio(ours: float, theirs: float) -> str:
    """``ours / theirs`` as ``"2.31x"`` (``"-"`` when either is missing or zero)."""
    if not ours or not theirs:
        return "-"
    return f"{ours / theirs:.2f}x"
