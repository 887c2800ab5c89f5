"""A task is one prompt with the reference its completions are checked against."""

from __future__ import annotations

from abc import ABC, abstractmethod
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


def task_index(index: int, num_tasks: int) -> int:
    """``index`` as a position in ``range(num_tasks)`` (negative indices count from the end, as
    in a list).

    :raises IndexError: when it is out of range.
    """
    if not -num_tasks <= index < num_tasks:
        raise IndexError(f"task index {index} is out of range for {num_tasks} tasks")
    return index % num_tasks


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
        raise TypeError(f"tasks must be a sequence of Task (or an indexable TaskSource), got {type(tasks).__name__}")
    if len(tasks) == 0:
        raise ValueError("tasks is empty: an environment needs at least one task")
    first = tasks[0]
    if not isinstance(first, Task):
        raise TypeError(f"tasks must hold grpo_envs.tasks.Task objects, got {type(first).__name__}")
    return tasks


class GeneratedTasks(ABC):
    """Base of procedural task sources: a fixed number of tasks, each a pure function of its
    index, so ``source[k]`` costs nothing until it is asked for and is the same every time.

    Subclasses implement :meth:`generate`; task ``k`` has level ``levels[k % len(levels)]``,
    so the levels are balanced.

    :param num_tasks: the source's length.
    :param levels: an int or a non-empty sequence of ints, each one of ``allowed_levels``.
    :param allowed_levels: the levels the subclass can generate.
    """

    def __init__(self, num_tasks: int, levels: int | Sequence[int], allowed_levels: Sequence[int]) -> None:
        if num_tasks < 1:
            raise ValueError(f"num_tasks must be at least 1, got {num_tasks}")
        chosen = (levels,) if isinstance(levels, int) else tuple(levels)
        if not chosen or any(not isinstance(level, int) or level not in allowed_levels for level in chosen):
            raise ValueError(
                f"levels must be an int or a sequence of ints from {tuple(allowed_levels)}, got {levels!r}"
            )
        self.num_tasks, self.levels = int(num_tasks), chosen

    def __len__(self) -> int:
        return self.num_tasks

    def __getitem__(self, index: int) -> Task:
        index = task_index(index, self.num_tasks)
        return self.generate(index, self.levels[index % len(self.levels)])

    @abstractmethod
    def generate(self, index: int, level: int) -> Task:
        """Task ``index`` (in ``[0, len)``), of the given level; deterministic."""
