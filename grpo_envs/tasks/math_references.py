"""Refuse (or drop) math tasks whose reference answer cannot be parsed, when the tasks are read.

Example::

    >>> from grpo_envs.tasks.base import Task
    >>> from grpo_envs.tasks.math_references import validate_references
    >>> tasks = [Task(prompt="1+1?", reference="2", id="a"), Task(prompt="?", reference="\\\\frac{1}{", id="b")]
    >>> kept, dropped = validate_references(tasks, on_bad_reference="skip", warn=False)
    >>> [t.id for t in kept], [task_id for task_id, _ in dropped]
    (['a'], ['b'])
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from grpo_envs.tasks.base import Task
from grpo_envs.verify.math_reference import BadReferenceError, check_references

#: What to do with a task whose reference cannot be parsed: raise an error, or drop the task.
ON_BAD_REFERENCE: tuple[str, ...] = ("raise", "skip")


def bad_reference_message(task: Task, problem: str, n_bad: int = 1, n_tasks: int = 1) -> str:
    """The error for a task whose reference cannot be parsed: which task, what was wrong, what to do."""
    others = f" ({n_bad} of {n_tasks} tasks have such a reference)" if n_bad > 1 else ""
    return (
        f"task {task.id!r} has the reference {str(task.reference)[:120]!r}, which cannot be parsed: {problem}{others}; "
        "fix the data, or pass on_bad_reference='skip' to drop such tasks"
    )


def validate_references(
    tasks: Sequence[Task], on_bad_reference: str = "raise", *, warn: bool = True
) -> tuple[list[Task], list[tuple[str, str]]]:
    """Check every task's reference (:func:`~grpo_envs.verify.math_reference.check_references`).

    :param tasks: the tasks, e.g. from :func:`~grpo_envs.tasks.math.load_math`.
    :param on_bad_reference: ``"raise"`` (default): raise :class:`BadReferenceError` naming the
        first bad task; ``"skip"``: drop the bad tasks and warn how many were dropped.
    :param warn: whether ``"skip"`` issues a :class:`UserWarning` when it drops tasks.
    :returns: ``(kept_tasks, dropped)`` where ``dropped`` lists ``(task_id, problem)``.
    :raises BadReferenceError: with ``"raise"``, if any reference cannot be parsed.
    """
    if on_bad_reference not in ON_BAD_REFERENCE:
        raise ValueError(f"on_bad_reference must be one of {ON_BAD_REFERENCE}, got {on_bad_reference!r}")
    problems = check_references([str(task.reference) for task in tasks])
    bad = [(task, problem) for task, problem in zip(tasks, problems, strict=True) if problem is not None]
    if bad and on_bad_reference == "raise":
        raise BadReferenceError(bad_reference_message(bad[0][0], bad[0][1], len(bad), len(tasks)))
    kept = [task for task, problem in zip(tasks, problems, strict=True) if problem is None]
    dropped = [(task.id, problem) for task, problem in bad]
    if dropped and warn:
        first_id, first_problem = dropped[0]
        warnings.warn(
            f"dropped {len(dropped)} of {len(tasks)} math tasks whose reference cannot be parsed "
            f"(first: task {first_id!r}: {first_problem})",
            UserWarning,
            stacklevel=2,
        )
    return kept, dropped
