"""BFCL tasks: the Berkeley Function Calling Leaderboard's question and ``possible_answer`` files.

:func:`load_bfcl` reads them from a path, or from an installed ``bfcl-eval`` package.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from grpo_envs.tasks.base import Task
from grpo_envs.tasks.tool_format import format_tool_prompt, tool_call_protocol
from grpo_envs.verify.tool_schema import function_name

_BFCL_PREFIX_RE = re.compile(r"^BFCL_v\d+_")


def bfcl_category(name: str) -> str:
    """BFCL's category of a file (``BFCL_v4_parallel_multiple.json`` -> ``parallel_multiple``)."""
    return _BFCL_PREFIX_RE.sub("", Path(name).stem)


def _category_family(category: str) -> str:
    """One of this project's four categories for a BFCL category name."""
    if "irrelevance" in category:
        return "irrelevance"
    if "parallel" in category:
        return "parallel"
    if "multiple" in category:
        return "multiple"
    return "simple"


def bfcl_data_dir() -> Path:
    """The data folder of an installed ``bfcl-eval`` package (``pip install --no-deps bfcl-eval``).

    :raises ModuleNotFoundError: the package is not installed.
    """
    import importlib.resources

    try:
        root = importlib.resources.files("bfcl_eval")
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "bfcl-eval is not installed; pass a path to a BFCL question file, or run "
            "`pip install --no-deps bfcl-eval` to use its bundled data"
        ) from None
    return Path(str(root)) / "data"


def _resolve_bfcl_source(source: str | Path) -> Path:
    path = Path(source)
    if path.is_file():
        return path
    if path.suffix or "/" in str(source) or "\\" in str(source):
        raise FileNotFoundError(f"BFCL question file {str(source)!r} does not exist")
    data = bfcl_data_dir()
    wanted = bfcl_category(str(source))
    # Compare whole category names: the glob alone would let "multiple" match "parallel_multiple".
    candidates = sorted(p for p in data.glob(f"BFCL_v*_{wanted}.json") if bfcl_category(p.name) == wanted)
    if not candidates:
        known = sorted(bfcl_category(p.name) for p in data.glob("BFCL_v*_*.json"))
        raise FileNotFoundError(f"no BFCL category {str(source)!r} in {data}; known categories: {known}")
    return candidates[-1]


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number} is not valid JSON ({exc.msg})") from None
    return rows


def _bfcl_request(question: Any, entry_id: str) -> str:
    if isinstance(question, str):
        return question
    turns = question if isinstance(question, list) else []
    if turns and isinstance(turns[0], dict):  # a single turn given as a flat message list
        turns = [turns]
    if len(turns) != 1:
        raise ValueError(f"BFCL entry {entry_id!r} has {len(turns)} turns; only single-turn categories are supported")
    parts = []
    for message in turns[0]:
        role, content = message.get("role", "user"), str(message.get("content", ""))
        parts.append(content if role == "user" and len(turns[0]) == 1 else f"[{role}] {content}")
    return "\n".join(parts)


def load_bfcl(
    source: str | Path,
    answers: str | Path | None = None,
    *,
    abstain: str = "empty_list",
    limit: int | None = None,
) -> list[Task]:
    """Load BFCL single-turn tasks (question JSONL + ``possible_answer`` JSONL).

    :param source: a question file path, or a category name (``"simple_python"``,
        ``"parallel_multiple"``, ...) looked up in an installed ``bfcl-eval`` package via
        ``importlib.resources`` (``pip install --no-deps bfcl-eval``; not a dependency).
    :param answers: the possible-answer file; by default ``possible_answer/<same name>`` next
        to the question file. Irrelevance categories have none: their reference is ``[]``.
    :param abstain: how irrelevance tasks must be answered (sets the prompt's protocol line).
    :param limit: keep only the first ``limit`` tasks.
    :returns: tasks whose ``reference`` is ``{"tools", "ground_truth", "string_match": {}}``.
    :raises ValueError: a multi-turn, Java or JavaScript category, or an entry without answer.
    """
    path = _resolve_bfcl_source(source)
    category = bfcl_category(path.name)
    if category.startswith("multi_turn") or category.endswith(("_java", "_javascript")):
        raise ValueError(f"BFCL category {category!r} is not supported; use a single-turn Python category")
    answer_path = Path(answers) if answers is not None else path.parent / "possible_answer" / path.name
    family = _category_family(category)
    ground_truth: dict[str, list[Any]] = {}
    if answer_path.is_file():
        for row in _read_jsonl(answer_path):
            truth = row.get("ground_truth", [])
            ground_truth[str(row["id"])] = [truth] if isinstance(truth, dict) else list(truth)
    elif family != "irrelevance":
        raise FileNotFoundError(f"no possible-answer file for {path.name}: expected {answer_path}; pass answers=...")
    protocol = tool_call_protocol(abstain)
    tasks = []
    for row in _read_jsonl(path)[:limit]:
        entry_id = str(row["id"])
        functions = row.get("function", [])
        functions = [functions] if isinstance(functions, dict) else list(functions)
        if family == "irrelevance":
            truth = []
        elif entry_id not in ground_truth:
            raise ValueError(f"BFCL entry {entry_id!r} has no ground truth in {answer_path}")
        else:
            truth = ground_truth[entry_id]
        names = {function_name(f) for f in functions}
        missing = [name for call in truth for name in call if name not in names]
        if missing:
            raise ValueError(
                f"BFCL entry {entry_id!r}: ground truth calls {missing}, which are not among its functions"
            )
        tasks.append(
            Task(
                prompt=format_tool_prompt(_bfcl_request(row.get("question"), entry_id), functions, protocol),
                reference={"tools": functions, "ground_truth": truth, "string_match": {}},
                id=entry_id,
                meta={"category": family, "bfcl_category": category, "source": "bfcl"},
            )
        )
    if not tasks:
        raise ValueError(f"{path} holds no tasks")
    return tasks
