"""grpo/Math-v0: math word problems and exercises with a sympy-checked final answer."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from grpo_envs.core import DEFAULT_MAX_COMPLETION_LENGTH, DEFAULT_MAX_PROMPT_LENGTH, TextBanditEnv
from grpo_envs.tasks.base import Task, TaskSource, as_task_source
from grpo_envs.tasks.math import LEVELS, ProceduralMathTasks, load_gsm8k, load_math
from grpo_envs.tasks.math_references import ON_BAD_REFERENCE, bad_reference_message, validate_references
from grpo_envs.verify.math import (
    DEFAULT_ABS_TOL,
    DEFAULT_REL_TOL,
    DEFAULT_STRATEGIES,
    DEFAULT_TIMEOUT,
    STRATEGIES,
    is_expanded,
    verify_math_answer,
)
from grpo_envs.verify.math_reference import BadReferenceError, check_reference
from grpo_envs.verify.result import WRONG, VerifyResult

#: The prompt shown to the policy; ``{question}`` is replaced by the task's question.
DEFAULT_PROMPT_TEMPLATE = "{question}\nPut your final answer in \\boxed{}."

DATASET_FORMATS = ("gsm8k", "math")


class PromptedTasks:
    """A view of a task source whose prompts are wrapped in a template (computed on access).

    :param tasks: the underlying source, whose prompts are the bare questions.
    :param template: text with a ``{question}`` placeholder (plain replacement, so LaTeX
        braces in the template need no escaping).
    """

    def __init__(self, tasks: TaskSource, template: str) -> None:
        if "{question}" not in template:
            raise ValueError(f"prompt_template must contain '{{question}}', got {template!r}")
        self.tasks, self.template = tasks, template

    def __len__(self) -> int:
        return len(self.tasks)

    def __getitem__(self, index: int) -> Task:
        task = self.tasks[index]
        prompt = self.template.replace("{question}", task.prompt)
        return Task(prompt=prompt, reference=task.reference, id=task.id, meta=task.meta)


class MathEnv(TextBanditEnv):
    """
    ## Description

    A one-step text bandit over math problems. The observation is a problem with an instruction
    to put the final answer in ``\\boxed{}``; the action is the policy's completion. The final
    answer is extracted (``\\boxed{}``, ``####``, "the answer is", or the last number, in a
    configurable order) and compared with the reference: as plain numbers, then by sympy
    (exact, then numerically with a relative tolerance), LaTeX included. Sympy runs in a
    worker process under a hard wall-clock timeout, so no answer can hang the environment.

    By default the tasks are generated (:class:`~grpo_envs.tasks.math.ProceduralMathTasks`):
    level 1 is one operation on small integers, 2 multi-step integer arithmetic, 3 fractions,
    4 linear equations, 5 symbolic answers (``x^2+2x+1``, ``\\frac{\\sqrt{2}}{2}``). The
    ``train`` and ``test`` splits never share a question, so accuracy on ``split="test"`` is
    held-out accuracy. GSM8K- or MATH-format data can be loaded instead with ``dataset=``.

    ## Action Space

    :class:`~grpo_envs.spaces.UnicodeText` (any ``str`` up to ``max_completion_length``
    characters, the empty string included). A non-``str`` action raises ``TypeError``.

    ## Observation Space

    :class:`~grpo_envs.spaces.UnicodeText`: the prompt (up to ``max_prompt_length`` characters).

    ## Rewards

    1.0 if the extracted answer equals the reference, else 0.0 (a task that asks to expand
    also needs the answer expanded: ``(x+1)^2`` does not answer "expand (x+1)^2"). ``info`` explains it:
    ``correct`` (bool), ``reason`` (``correct | wrong | parse_failed | timeout | error``),
    ``parsed`` (the extracted answer), ``reference``, ``strategy`` (which extractor found the
    answer), ``method`` (``fast | exact | numeric | none``) and, on failure, ``message``.
    ``error`` means the *reference* could not be parsed (a dataset problem, not the policy's);
    references are checked when the tasks are read (datasets and task lists) or when a task is
    first drawn (generated sources), so such a task fails loudly instead (``on_bad_reference``).

    ## Episode End

    Every episode ends after one step (``terminated=True``, ``truncated=False``).

    ## Arguments

    - ``levels`` (int or sequence of int, default ``(1, 2, 3, 4, 5)``): levels of the generated tasks.
    - ``num_tasks`` (int, default 1000): number of generated tasks; for a dataset, keep only
      the first ``num_tasks`` records (None: all).
    - ``split`` (``"train"`` or ``"test"``, default ``"train"``): generated split, or the
      dataset split to read.
    - ``seed`` (int, default 0): seed of task *generation* (episodes are seeded by ``reset``).
    - ``tasks`` (task source, optional): use these tasks (their prompts are the bare questions).
    - ``dataset`` (str, optional): a local ``.jsonl``/``.json``/``.parquet`` file or a hub name.
    - ``dataset_format`` (``"gsm8k"`` or ``"math"``, default ``"gsm8k"``) and ``dataset_config``.
    - ``strategies`` (sequence of str, default ``("boxed", "math_env", "answer_is", "hash",
      "last_number")``): answer extraction strategies, in order.
    - ``on_bad_reference`` (``"raise"`` or ``"skip"``, default ``"raise"``): a task whose reference
      cannot be parsed raises :class:`~grpo_envs.verify.math_reference.BadReferenceError` naming
      it, or is dropped with a warning that says how many were (``env.unwrapped.skipped_tasks``
      lists them). Datasets and task lists are checked at construction; a lazily generated
      source is checked task by task when a task is drawn (``"skip"`` checks it all up front).
    - ``timeout`` (float, default 2.0): seconds one sympy comparison may take.
    - ``rel_tol`` (float, default 1e-6) and ``abs_tol`` (float, default 1e-9): numeric tolerances.
    - ``prompt_template`` (str): must contain ``{question}``.
    - ``render_mode`` (None or ``"ansi"``), ``max_prompt_length``, ``max_completion_length``.

    Example::

        >>> import gymnasium as gym
        >>> import grpo_envs
        >>> env = gym.make("grpo/Math-v0", levels=1, split="test")
        >>> prompt, info = env.reset(seed=0)
        >>> answer = env.unwrapped.task.reference
        >>> _, reward, terminated, truncated, info = env.step(f"So the result is \\\\boxed{{{answer}}}.")
        >>> reward, info["reason"], terminated
        (1.0, 'correct', True)

    ## Version History

    - v0: initial version.
    """

    def __init__(
        self,
        levels: int | Sequence[int] = LEVELS,
        num_tasks: int | None = 1000,
        split: str = "train",
        seed: int = 0,
        *,
        tasks: TaskSource | Sequence[Task] | None = None,
        dataset: str | None = None,
        dataset_format: str = "gsm8k",
        dataset_config: str | None = None,
        strategies: Sequence[str] = DEFAULT_STRATEGIES,
        timeout: float = DEFAULT_TIMEOUT,
        rel_tol: float = DEFAULT_REL_TOL,
        abs_tol: float = DEFAULT_ABS_TOL,
        prompt_template: str = DEFAULT_PROMPT_TEMPLATE,
        on_bad_reference: str = "raise",
        render_mode: str | None = None,
        max_prompt_length: int = DEFAULT_MAX_PROMPT_LENGTH,
        max_completion_length: int = DEFAULT_MAX_COMPLETION_LENGTH,
    ) -> None:
        unknown = [s for s in strategies if s not in STRATEGIES]
        if isinstance(strategies, str) or not strategies or unknown:
            raise ValueError(f"strategies must be a non-empty sequence of names from {STRATEGIES}, got {strategies!r}")
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        if rel_tol < 0 or abs_tol < 0:
            raise ValueError(f"rel_tol and abs_tol must be >= 0, got {rel_tol} and {abs_tol}")
        if tasks is not None and dataset is not None:
            raise ValueError("pass either tasks= or dataset=, not both")
        if on_bad_reference not in ON_BAD_REFERENCE:
            raise ValueError(f"on_bad_reference must be one of {ON_BAD_REFERENCE}, got {on_bad_reference!r}")
        if tasks is not None:
            source: TaskSource = as_task_source(tasks)
        elif dataset is not None:
            if dataset_format not in DATASET_FORMATS:
                raise ValueError(f"dataset_format must be one of {DATASET_FORMATS}, got {dataset_format!r}")
            loader = load_gsm8k if dataset_format == "gsm8k" else load_math
            source = loader(dataset, split, config=dataset_config, limit=num_tasks)
        else:
            if num_tasks is None:
                raise ValueError("num_tasks=None means 'all records' and needs dataset=; generated tasks need a count")
            source = ProceduralMathTasks(levels=levels, num_tasks=num_tasks, split=split, seed=seed)
        #: ``(task_id, problem)`` for each task dropped by ``on_bad_reference="skip"``.
        self.skipped_tasks: list[tuple[str, str]] = []
        # Lists are checked now; a generated source is checked task by task in reset().
        self._check_on_reset = not isinstance(source, (list, tuple)) and on_bad_reference == "raise"
        if not self._check_on_reset:
            tasks_read = [source[i] for i in range(len(source))]
            kept, self.skipped_tasks = validate_references(tasks_read, on_bad_reference, warn=False)
            if self.skipped_tasks:
                first_id, first_problem = self.skipped_tasks[0]
                warnings.warn(
                    f"dropped {len(self.skipped_tasks)} of {len(source)} math tasks whose reference cannot be "
                    f"parsed (first: task {first_id!r}: {first_problem})",
                    UserWarning,
                    stacklevel=2,
                )
            if not kept:
                raise BadReferenceError(f"none of the {len(source)} tasks has a reference that can be parsed")
            source = kept
        super().__init__(
            PromptedTasks(source, prompt_template),
            render_mode=render_mode,
            max_prompt_length=max_prompt_length,
            max_completion_length=max_completion_length,
        )
        self.strategies = tuple(strategies)
        self.timeout, self.rel_tol, self.abs_tol = float(timeout), float(rel_tol), float(abs_tol)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """See :class:`~grpo_envs.core.TextBanditEnv`; a drawn task's reference is checked first (cached)."""
        prompt, info = super().reset(seed=seed, options=options)
        task = self.task
        if self._check_on_reset and task is not None:
            problem = check_reference(str(task.reference))
            if problem is not None:
                raise BadReferenceError(bad_reference_message(task, problem))
        return prompt, info

    def verify(self, task: Task, completion: str) -> VerifyResult:
        """Extract the final answer from ``completion`` and compare it with ``task.reference``.

        A task whose ``meta["answer_form"]`` is ``"expanded"`` also needs an answer without
        grouped sums (:func:`~grpo_envs.verify.math.is_expanded`).
        """
        result = verify_math_answer(
            completion,
            str(task.reference),
            strategies=self.strategies,
            timeout=self.timeout,
            rel_tol=self.rel_tol,
            abs_tol=self.abs_tol,
        )
        if result.correct and task.meta.get("answer_form") == "expanded" and not is_expanded(result.parsed):
            return VerifyResult.fail(
                WRONG, parsed=result.parsed, **{**result.details, "message": "the task asks for the expanded form"}
            )
        return result
