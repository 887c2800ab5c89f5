"""Import a benchmark script as a module, for the smoke tests of benchmarks/."""

from __future__ import annotations

import importlib
import pathlib
import sys
from typing import Any

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str) -> Any:
    """The script ``benchmarks/<name>.py`` as a module (the scripts import their helpers from
    their folder, so it goes on ``sys.path``)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    return importlib.import_module(name)
