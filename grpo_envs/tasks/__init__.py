"""Task sources: procedural generators (seeded) and dataset loaders."""

from grpo_envs.tasks.base import Task, TaskSource, as_task_source

__all__ = ["Task", "TaskSource", "as_task_source"]
