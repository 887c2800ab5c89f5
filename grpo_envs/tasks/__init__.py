"""Task sources: procedural generators (seeded) and dataset loaders."""

from grpo_envs.tasks.base import GeneratedTasks, Task, TaskSource, as_task_source

__all__ = ["GeneratedTasks", "Task", "TaskSource", "as_task_source"]
