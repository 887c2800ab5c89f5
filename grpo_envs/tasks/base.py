"""A task is one prompt with the reference its completions are checked against."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Task:
    """One prompt of a text bandit.

    :param prompt: the text shown to the policy.
    :param reference: what the verifier compares a completion against (an answer string,
        unit tests, reference tool calls, ...).
    :param id: a stable, human-readable identifier (e.g. ``"arith-L1-00042"``).
    :param meta: anything else worth reporting in ``info`` (difficulty, source, ...).
    """

    prompt: str
    reference: Any
    id: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class TaskSource(Protocol):
    """Anything indexable that yields tasks: a list, or a procedural generator of fixed size.

    Indexing must be deterministic: ``source[k]`` is the same task every time, which is what
    lets GRPO pin a group of G rollouts to one task with ``reset(options={"task_id": k})``.
    """

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Task: ...


def as_task_source(tasks: TaskSource | Sequence[Task]) -> TaskSource:
    """Check that ``tasks`` is a non-empty indexable source of :class:`Task` and return it."""
    if not hasattr(tasks, "__len__") or not hasattr(tasks, "__getitem__"):
        raise TypeError(
            f"tasks must be a sequence of Task (or an indexable TaskSource), got {type(tasks).__name__}"
        )
    if len(tasks) == 0:
        raise ValueError("tasks is empty: an environment needs at least one task")
    first = tasks[0]
    if not isinstance(first, Task):
        raise TypeError(f"tasks must hold grpo_envs.tasks.Task objects, got {type(first).__name__}")
    return tasks
