"""The one verifier call every integration makes: an env id (or env) in, a text env out, and a
completion scored against a task without stepping the env.

Scoring through :meth:`TextBanditEnv.verify` instead of ``reset`` + ``step`` is what makes the
integrations safe to call from several threads at once: ``verify`` reads only the task it is
given and the env's fixed settings, never the env's episode state.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from grpo_envs.core import TextBanditEnv
from grpo_envs.tasks.base import Task
from grpo_envs.verify.result import VerifyResult


def make_text_env(env: str | gym.Env[Any, Any], env_kwargs: dict[str, Any] | None = None) -> TextBanditEnv:
    """The :class:`~grpo_envs.core.TextBanditEnv` behind ``env``.

    :param env: a registered id (``"grpo/Math-v0"``) or an env (wrapped or not).
    :param env_kwargs: keyword arguments of ``gym.make`` when ``env`` is an id.
    :raises gymnasium.error.Error: ``env`` is an id that is not registered.
    :raises TypeError: the env is not a text env (e.g. ``grpo/Bandit-v0``, whose actions are ints).

    Example::

        >>> import grpo_envs
        >>> make_text_env("grpo/Math-v0", {"levels": 1}).num_tasks
        1000
    """
    if isinstance(env, str):
        import grpo_envs  # noqa: F401 - registers the grpo/* ids before gym.make looks them up

        made: gym.Env[Any, Any] = gym.make(env, **(env_kwargs or {}))
    elif env_kwargs:
        raise ValueError("env_kwargs only applies when env is an id; configure an env instance when you make it")
    else:
        made = env
    text_env = made.unwrapped
    if not isinstance(text_env, TextBanditEnv):
        name = made.spec.id if made.spec is not None else type(text_env).__name__
        raise TypeError(
            f"{name} is not a text environment (its action space is {made.action_space}); the TRL and verl "
            "integrations score completions, so they need a grpo_envs.TextBanditEnv such as grpo/Math-v0"
        )
    return text_env


def score_completion(env: TextBanditEnv, task: Task, completion: str) -> VerifyResult:
    """Score ``completion`` against ``task`` exactly as ``env.step`` would, without touching the
    env's episode state (so concurrent calls are safe): oversized completions are refused
    unread, and a verifier that raises scores 0 with reason ``error``.

    :param env: the env whose verifier and settings are used.
    :param task: the task (it need not be one of ``env.tasks``).
    :param completion: the policy's text.
    """
    # The env's own guard (length cap + exception to reason "error"), so that a score here
    # and a reward from env.step can never disagree.
    return env.verify_safely(task, completion)
