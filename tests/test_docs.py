"""The Python examples in README.md and docs/*.md run as written.

Each ```python block of a file runs in order in one namespace (later blocks may use earlier
ones), in a temporary working directory that links to the repo's ``tests/`` so examples can
use the fixtures by the paths a user in the repo root would type. A block whose first line is ``# not run: <why>`` is
skipped on purpose (e.g. it needs a model hub); say why in that comment.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
BLOCK_RE = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks(path: Path) -> list[str]:
    return [b for b in BLOCK_RE.findall(path.read_text()) if not b.startswith("# not run:")]


@pytest.mark.parametrize("path", [p for p in DOC_FILES if python_blocks(p)], ids=lambda p: p.name)
def test_examples_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tests").symlink_to(ROOT / "tests")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__doc_example__"}
    for number, block in enumerate(python_blocks(path), start=1):
        try:
            exec(compile(block, f"{path.name}:block{number}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"{path.name} block {number} failed:\n{block}") from exc
