"""TextBanditEnv: the base of every verifiable-reward text environment.

A text bandit is a one-step episode: ``reset`` shows a prompt, ``step`` takes the policy's
completion, verifies it, and ends the episode with a reward and an ``info`` that explains it.
Subclasses implement one method, :meth:`TextBanditEnv.verify`; :class:`RewardFnEnv` turns a
list of tasks and a plain reward function into an environment without subclassing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, SupportsFloat

import gymnasium as gym
from gymnasium.error import ResetNeeded

from grpo_envs.spaces import UnicodeText
from grpo_envs.tasks.base import Task, TaskSource, as_task_source
from grpo_envs.verify.result import CORRECT, ERROR, PARSE_FAILED, WRONG, VerifyResult

#: Default bounds of the Text spaces, in characters. Completions longer than
#: ``max_completion_length`` are not verified at all (reward 0, reason ``parse_failed``):
#: a policy should not be able to buy time or memory in the verifier with a huge answer.
DEFAULT_MAX_PROMPT_LENGTH = 16_384
DEFAULT_MAX_COMPLETION_LENGTH = 16_384


class TextBanditEnv(gym.Env[str, str]):
    """Base class: prompt in, completion out, reward from a verifier.

    Subclasses provide the tasks and implement :meth:`verify`.

    :param tasks: an indexable source of :class:`~grpo_envs.tasks.Task` (a list works).
    :param render_mode: ``None`` or ``"ansi"`` (``render()`` returns the last exchange as text).
    :param max_prompt_length: bound of the observation space, in characters.
    :param max_completion_length: bound of the action space, in characters.

    ``reset(seed=..., options={"task_id": k})`` pins task ``k`` (an index into ``tasks``, or a
    task's ``id`` string); without it, the task is drawn with the env's seeded RNG. This is how
    GRPO forms a group: G resets with the same ``task_id``.

    ``info`` after ``step`` always has ``task_id``, ``correct`` (bool), ``reason``, ``parsed``
    (what was read from the completion) and ``reference``, plus the verifier's ``details``.
    """

    observation_space: UnicodeText
    action_space: UnicodeText

    metadata: dict[str, Any] = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        tasks: TaskSource | Sequence[Task],
        *,
        render_mode: str | None = None,
        max_prompt_length: int = DEFAULT_MAX_PROMPT_LENGTH,
        max_completion_length: int = DEFAULT_MAX_COMPLETION_LENGTH,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode={render_mode!r} is not supported; use one of {self.metadata['render_modes']} or None"
            )
        self.tasks: TaskSource = as_task_source(tasks)
        self.render_mode = render_mode
        self.observation_space = UnicodeText(max_length=max_prompt_length, min_length=0)
        self.action_space = UnicodeText(max_length=max_completion_length, min_length=0)
        self._task: Task | None = None
        self._task_index: int | None = None
        self._last: dict[str, Any] | None = None
        self._id_to_index: dict[str, int] | None = None

    # -- what subclasses implement ---------------------------------------------------------

    def verify(self, task: Task, completion: str) -> VerifyResult:
        """Score ``completion`` against ``task.reference``. Must not raise for any string."""
        raise NotImplementedError

    # -- Gymnasium API ---------------------------------------------------------------------

    @property
    def task(self) -> Task | None:
        """The current task (None before the first reset)."""
        return self._task

    @property
    def num_tasks(self) -> int:
        return len(self.tasks)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        if options.get("task_id") is not None:
            index = self._resolve_task_id(options["task_id"])
        else:
            index = int(self.np_random.integers(len(self.tasks)))
        self._task_index, self._task = index, self.tasks[index]
        self._last = None
        return self._task.prompt, self._reset_info()

    def step(self, action: str) -> tuple[str, SupportsFloat, bool, bool, dict[str, Any]]:
        task = self._check_action(action)
        result = self.verify_safely(task, action)
        info = self._step_info(task, result)
        self._last = {"completion": action, "reward": float(result.reward), "info": info}
        self._task = None  # one step per episode: the next step needs a reset
        return task.prompt, float(result.reward), True, False, info

    def _check_action(self, action: Any) -> Task:
        """The current task, after checking that an episode is running and ``action`` is text."""
        if self._task is None:
            raise ResetNeeded("Cannot call env.step() before calling env.reset()")
        if not isinstance(action, str):
            raise TypeError(
                f"action must be a str (the completion text), got {type(action).__name__}; "
                "decode token ids to text before calling step()"
            )
        return self._task

    def verify_safely(self, task: Task, completion: str) -> VerifyResult:
        """:meth:`verify`, except that an oversized completion is refused unread and a crashing
        verifier scores 0 with reason ``error`` instead of ending the caller's training run."""
        if len(completion) > self.action_space.max_length:
            return VerifyResult.fail(
                PARSE_FAILED,
                message=f"completion has {len(completion)} characters; the limit is {self.action_space.max_length}",
            )
        try:
            return self.verify(task, completion)
        except Exception as exc:  # noqa: BLE001 - a verifier bug must not kill a training run
            return VerifyResult.fail(ERROR, message=f"{type(exc).__name__}: {exc}")

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        task = (
            self._task
            if self._task is not None
            else (self.tasks[self._task_index] if self._task_index is not None else None)
        )
        if task is None:
            return ""
        lines = [f"[task {self._task_index} {task.id}]", f"prompt: {task.prompt}"]
        if self._last is not None:
            info = self._last["info"]
            lines.append(f"completion: {self._last['completion']}")
            lines.append(
                f"reward: {self._last['reward']:g} ({info['reason']}; parsed={info['parsed']!r}, "
                f"reference={info['reference']!r})"
            )
        return "\n".join(lines) + "\n"

    # -- helpers ---------------------------------------------------------------------------

    def _resolve_task_id(self, task_id: Any) -> int:
        if isinstance(task_id, str):
            if self._id_to_index is None:
                self._id_to_index = {self.tasks[i].id: i for i in range(len(self.tasks))}
            if task_id not in self._id_to_index:
                raise KeyError(f"options['task_id']={task_id!r} is not the id of any task in this env")
            return self._id_to_index[task_id]
        try:
            index = int(task_id)
        except (TypeError, ValueError):
            raise TypeError(f"options['task_id'] must be an int index or a task id str, got {task_id!r}") from None
        if not 0 <= index < len(self.tasks):
            raise IndexError(f"options['task_id']={index} is out of range: this env has {len(self.tasks)} tasks")
        return index

    def _reset_info(self) -> dict[str, Any]:
        assert self._task is not None
        return {"task_id": self._task_index, "task_name": self._task.id, **dict(self._task.meta)}

    def _step_info(self, task: Task, result: VerifyResult) -> dict[str, Any]:
        return {
            "task_id": self._task_index,
            "task_name": task.id,
            "correct": bool(result.correct),
            "reason": result.reason,
            "parsed": result.parsed,
            "reference": self.describe_reference(task),
            **result.details,
        }

    def describe_reference(self, task: Task) -> Any:
        """What ``info['reference']`` shows; subclasses with bulky references may shorten it."""
        return task.reference


RewardFn = Callable[[str, Any], "float | bool | VerifyResult"]


class RewardFnEnv(TextBanditEnv):
    """A text bandit built from tasks and a reward function: no subclass needed.

    :param tasks: a list of :class:`~grpo_envs.tasks.Task`, or of ``(prompt, reference)`` pairs.
    :param reward_fn: ``reward_fn(completion, reference)`` returning a bool, a float, or a full
        :class:`~grpo_envs.verify.result.VerifyResult`. A float > 0 is reported as correct only
        when it is 1.0 or more; an exception scores 0 with reason ``error``.
    :param kwargs: forwarded to :class:`TextBanditEnv`.

    Example::

        >>> from grpo_envs import RewardFnEnv
        >>> env = RewardFnEnv([("Say hi", "hi")], lambda text, ref: text.strip().lower() == ref)
        >>> prompt, info = env.reset(seed=0)
        >>> env.step("Hi")[1]
        1.0
    """

    def __init__(self, tasks: Sequence[Task | tuple[str, Any]], reward_fn: RewardFn, **kwargs: Any) -> None:
        if not callable(reward_fn):
            raise TypeError(f"reward_fn must be callable (completion, reference) -> reward, got {reward_fn!r}")
        normalised = [
            t if isinstance(t, Task) else Task(prompt=t[0], reference=t[1], id=f"task-{i}") for i, t in enumerate(tasks)
        ]
        super().__init__(normalised, **kwargs)
        self.reward_fn = reward_fn

    def verify(self, task: Task, completion: str) -> VerifyResult:
        value = self.reward_fn(completion, task.reference)
        if isinstance(value, VerifyResult):
            return value
        reward = float(value)
        correct = reward >= 1.0
        return VerifyResult(reward=reward, correct=correct, reason=CORRECT if correct else WRONG)
