"""Any ``grpo/*`` text env as a TRL reward function and dataset.

TRL's ``GRPOTrainer`` takes a dataset with a ``prompt`` column and reward functions called as
``reward(prompts=..., completions=..., **columns)``, where ``columns`` are the dataset's other
columns for the rows being scored. :func:`env_dataset` writes the env's tasks with a
``task_index`` and a ``task_id`` column, and :class:`EnvRewardFunction` scores each completion
against the task of its own row (read from ``task_index``, checked against ``task_id``), never
by re-parsing the prompt, with the env's own verifier.

The reasons behind the rewards reach TRL's logs through the two hooks TRL 1.16 passes to
every reward function: ``log_metric(name, value)`` (a scalar averaged over each logging step,
logged beside ``reward`` and ``kl``) receives the fraction of completions per reason, as
``reasons/<reward name>/<reason>``; ``log_extra(column, values)`` adds a ``<reward name>_reason``
column to the completions table that ``log_completions=True`` prints and saves.

Example::

    >>> from grpo_envs.integrations.trl import env_dataset, env_reward_function
    >>> dataset = env_dataset("grpo/Math-v0", levels=1, num_tasks=4)
    >>> dataset.column_names
    ['prompt', 'task_index', 'task_id']
    >>> reward = env_reward_function("grpo/Math-v0", levels=1, num_tasks=4)
    >>> rows = dataset[:2]
    >>> rows["prompt"][0]
    [{'role': 'user', 'content': 'What is 12 + 13?\\nPut your final answer in \\\\boxed{}.'}]
    >>> answers = [[{"role": "assistant", "content": "\\\\boxed{25}"}], [{"role": "assistant", "content": "no idea"}]]
    >>> reward(prompts=rows["prompt"], completions=answers, task_index=rows["task_index"], task_id=rows["task_id"])
    [1.0, 0.0]
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import gymnasium as gym

from grpo_envs.integrations.text_env import make_text_env, score_completion
from grpo_envs.verify.result import CORRECT, ERROR, PARSE_FAILED, TIMEOUT, WRONG

if TYPE_CHECKING:
    from datasets import Dataset

    from grpo_envs.core import TextBanditEnv

#: Reasons logged from the first batch on (as 0.0 when absent): the ones every verifier uses.
#: An env's own reasons are logged from the first batch in which they occur.
SHARED_REASONS = (CORRECT, WRONG, PARSE_FAILED, TIMEOUT, ERROR)


def env_dataset(
    env: str | gym.Env[Any, Any],
    *,
    conversational: bool = True,
    limit: int | None = None,
    **env_kwargs: Any,
) -> Dataset:
    """The env's tasks as a ``datasets.Dataset`` for TRL: ``prompt``, ``task_index``, ``task_id``.

    :param env: a registered id (``"grpo/Math-v0"``) or a text env.
    :param conversational: write each prompt as one user message (TRL then applies the
        tokenizer's chat template); False writes the prompt text as is.
    :param limit: keep only the first ``limit`` tasks (None: all of them).
    :param env_kwargs: keyword arguments of ``gym.make`` when ``env`` is an id; the reward
        function must be built with the same ones, so that ``task_index`` means the same task.
    """
    from datasets import Dataset

    text_env = make_text_env(env, env_kwargs)
    count = text_env.num_tasks if limit is None else min(int(limit), text_env.num_tasks)
    if count < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    prompts: list[Any] = []
    ids: list[str] = []
    for index in range(count):
        task = text_env.tasks[index]
        prompts.append([{"role": "user", "content": task.prompt}] if conversational else task.prompt)
        ids.append(task.id)
    return Dataset.from_dict({"prompt": prompts, "task_index": list(range(count)), "task_id": ids})


def env_reward_function(
    env: str | gym.Env[Any, Any], *, name: str | None = None, asynchronous: bool = False, **env_kwargs: Any
) -> EnvRewardFunction:
    """A TRL reward function that scores completions with ``env``'s verifier.

    :param env: a registered id or a text env (the same one :func:`env_dataset` was given).
    :param name: the name TRL logs the reward under (default: from the env id, e.g. ``"Math-v0"``).
    :param asynchronous: return an :class:`AsyncEnvRewardFunction`, which TRL runs on its event
        loop beside other async reward functions while the verification runs in a thread.
    :param env_kwargs: keyword arguments of ``gym.make`` when ``env`` is an id.
    """
    cls = AsyncEnvRewardFunction if asynchronous else EnvRewardFunction
    return cls(make_text_env(env, env_kwargs), name=name)


class EnvRewardFunction:
    """A text env's verifier as a TRL reward function.

    Called as ``reward(prompts=..., completions=..., task_index=..., task_id=..., **kwargs)``;
    returns one float per completion, the reward ``env.step`` would give. Completions may be
    plain strings or conversations (lists of message dicts): the last assistant message is
    scored, its text content blocks joined and its native ``tool_calls`` written as
    ``<tool_call>`` JSON, the format the tool envs read. Nothing is stored between calls
    except the set of reason names logged so far, so one instance may be called from
    several threads at once.

    :param env: the text env whose tasks and verifier are used.
    :param name: the name TRL logs the reward under (its ``__name__``).
    """

    def __init__(self, env: TextBanditEnv, *, name: str | None = None) -> None:
        self.env = env
        spec = getattr(env, "spec", None)
        default = spec.id.split("/")[-1] if spec is not None else type(env).__name__
        #: TRL names the reward's columns and metrics after ``__name__``.
        self.__name__ = name or default
        self._reasons_seen: set[str] = set(SHARED_REASONS)
        self._reasons_lock = threading.Lock()

    def __call__(
        self,
        prompts: Sequence[Any] | None = None,
        completions: Sequence[Any] | None = None,
        task_index: Sequence[int] | None = None,
        task_id: Sequence[str] | None = None,
        log_metric: Callable[[str, float], None] | None = None,
        log_extra: Callable[[str, list[Any]], None] | None = None,
        **kwargs: Any,
    ) -> list[float]:
        """Score ``completions[i]`` against task ``task_index[i]``.

        :param prompts: the prompts (unused: the task comes from ``task_index``).
        :param completions: strings, or message lists (conversational datasets).
        :param task_index: the dataset's ``task_index`` column for these rows.
        :param task_id: the dataset's ``task_id`` column, checked against the env's tasks.
        :param log_metric: TRL's scalar-metric hook (absent outside TRL).
        :param log_extra: TRL's completions-table hook (absent outside TRL).
        :param kwargs: TRL's other arguments (``completion_ids``, ``trainer_state``, ...), unused.
        """
        if completions is None:
            raise TypeError(f"{self.__name__} needs the completions (TRL passes completions=...)")
        if task_index is None:
            raise KeyError(
                f"{self.__name__} needs a task_index column in the training dataset, to score each completion "
                "against its own task; build the dataset with grpo_envs.integrations.trl.env_dataset"
            )
        if len(task_index) != len(completions) or (task_id is not None and len(task_id) != len(completions)):
            raise ValueError(f"got {len(completions)} completions but {len(task_index)} task_index values")
        results = []
        for i, completion in enumerate(completions):
            task = self._task(int(task_index[i]), None if task_id is None else task_id[i])
            results.append(score_completion(self.env, task, completion_text(completion)))
        self._log([r.reason for r in results], log_metric, log_extra)
        return [float(r.reward) for r in results]

    def _task(self, index: int, expected_id: str | None) -> Any:
        if not 0 <= index < self.env.num_tasks:
            raise IndexError(f"task_index {index} is out of range: the reward's env has {self.env.num_tasks} tasks")
        task = self.env.tasks[index]
        if expected_id is not None and task.id != expected_id:
            raise ValueError(
                f"task_index {index} is task {task.id!r} in the reward's env but {expected_id!r} in the dataset: "
                "build env_dataset and env_reward_function with the same env id and keyword arguments"
            )
        return task

    def _log(
        self,
        reasons: list[str],
        log_metric: Callable[[str, float], None] | None,
        log_extra: Callable[[str, list[Any]], None] | None,
    ) -> None:
        if log_extra is not None:
            log_extra(f"{self.__name__}_reason", list(reasons))
        if log_metric is None or not reasons:
            return
        counts = Counter(reasons)
        with self._reasons_lock:
            self._reasons_seen.update(counts)
            names = sorted(self._reasons_seen)
        # Every reason seen so far is logged in every batch (0.0 when absent), so that TRL's
        # average over a logging step is a true fraction, not a mean over the batches that had it.
        for reason in names:
            log_metric(f"reasons/{self.__name__}/{reason}", counts.get(reason, 0) / len(reasons))


class AsyncEnvRewardFunction(EnvRewardFunction):
    """:class:`EnvRewardFunction` as a coroutine: TRL gathers async reward functions on its event
    loop, and the verification runs in a worker thread so that it does not block the loop.
    Same parameters and result."""

    async def __call__(  # type: ignore[override]
        self, *args: Any, **kwargs: Any
    ) -> list[float]:
        """Score the completions in a thread; see :meth:`EnvRewardFunction.__call__`.

        :param args: positional arguments of :meth:`EnvRewardFunction.__call__`.
        :param kwargs: keyword arguments of :meth:`EnvRewardFunction.__call__`.
        """
        return await asyncio.to_thread(super().__call__, *args, **kwargs)


def completion_text(completion: Any) -> str:
    """The text of one TRL completion: a string, or the last assistant message of a conversation.

    :param completion: a ``str``, or a list of message dicts (``role``, ``content`` as a string
        or a list of ``{"type": "text", "text": ...}`` blocks, optional ``tool_calls``).
    :raises TypeError: anything else (the reward cannot tell what the policy wrote).

    Example::

        >>> completion_text([{"role": "assistant", "content": [{"type": "text", "text": "42"}]}])
        '42'
        >>> completion_text([{"role": "assistant", "content": None,
        ...     "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": {"x": 1}}}]}])
        '<tool_call>{"name": "f", "arguments": {"x": 1}}</tool_call>'
    """
    if isinstance(completion, str):
        return completion
    if not isinstance(completion, (list, tuple)) or not all(isinstance(m, dict) for m in completion):
        raise TypeError(
            "a completion must be a str or a list of message dicts (TRL's conversational format), "
            f"got {type(completion).__name__}: {completion!r:.80}"
        )
    replies = [m for m in completion if m.get("role", "assistant") == "assistant"]
    if not replies:
        return ""  # nothing the policy wrote: the verifier scores it 0 (parse_failed)
    message = replies[-1]
    parts = [_content_text(message.get("content"))]
    for call in message.get("tool_calls") or []:
        function = call.get("function", call) if isinstance(call, dict) else {}
        arguments = function.get("arguments", {})
        if isinstance(arguments, str):  # OpenAI-style: arguments as a JSON string
            try:
                arguments = json.loads(arguments)
            except json.JSONDecodeError:
                pass
        call_json = json.dumps({"name": function.get("name"), "arguments": arguments}, ensure_ascii=False)
        parts.append(f"<tool_call>{call_json}</tool_call>")
    return "\n".join(p for p in parts if p)


def _content_text(content: Any) -> str:
    """A message's ``content`` as text: a string, or its text blocks joined."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(block.get("text", "")) for block in content if isinstance(block, dict) and block.get("type") == "text"
        )
    raise TypeError(f"a message's content must be a str or a list of content blocks, got {type(content).__name__}")


__all__ = [
    "AsyncEnvRewardFunction",
    "EnvRewardFunction",
    "completion_text",
    "env_dataset",
    "env_reward_function",
]
