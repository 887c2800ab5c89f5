"""``python -m grpo_envs.demo``: roll out grpo/Math-v0 with a scripted policy and explain each reward.

The scripted "policy" peeks at the reference (it is a demo of the environment, not of
learning) and answers in a different format each time: ``\\boxed{}``, GSM8K's ``####``,
"the answer is", a decimal for a fraction, plain text after a LaTeX answer, a deliberate
mistake, no answer at all, and an adversarial exponent tower. Each line shows what the env
extracted, how it compared it, and the reward.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from fractions import Fraction
from typing import cast

import gymnasium as gym

import grpo_envs  # noqa: F401 - registers grpo/Math-v0
from grpo_envs.core import TextBanditEnv
from grpo_envs.tasks.base import Task


def _as_decimal(reference: str) -> str:
    """``3/4`` -> ``0.75``: the same number written differently (only for terminating decimals)."""
    try:
        value = Fraction(reference)
    except ValueError:
        return reference
    text = f"{float(value):.10g}"
    return text if Fraction(text) == value else reference


def _off_by_one(reference: str) -> str:
    try:
        return str(Fraction(reference) + 1)
    except ValueError:
        return reference + "+1"


def _copy_question(question: str) -> str:
    """Answer "Expand $(x + 7)(x - 8)$." with the product itself: equal, but not expanded."""
    return f"\\boxed{{{question.split('$')[1]}}}"


def _unsimplified_root(question: str) -> str:
    """Answer "Find the positive solution of $9x^2 = 2$." with an equal, unsimplified root."""
    a, b = question.split("$")[1].split("x^2 = ")
    return f"Dividing by {a}: $x = \\boxed{{\\sqrt{{\\frac{{{b}}}{{{a}}}}}}}$."


#: (policy style, which task it gets, how it writes its completion from the task's reference
#: answer and question). Each task is the first of the test split that satisfies the filter.
STYLES: list[tuple[str, Callable[[Task], bool], Callable[[str, str], str]]] = [
    ("boxed", lambda t: t.meta["level"] == 1, lambda ref, q: f"So the result is $\\boxed{{{ref}}}$."),
    ("gsm8k ####", lambda t: t.meta["level"] == 2, lambda ref, q: f"Doing the arithmetic gives the total.\n#### {ref}"),
    ("answer is", lambda t: t.meta["level"] == 4, lambda ref, q: f"Moving x to one side, the answer is {ref}."),
    (
        "decimal for a fraction",
        lambda t: t.meta["level"] == 3 and _as_decimal(t.reference) != t.reference,
        lambda ref, q: f"As a decimal: \\boxed{{{_as_decimal(ref)}}}",
    ),
    ("last number", lambda t: t.meta["level"] == 1, lambda ref, q: f"I tried a few values and ended with {ref}"),
    ("off by one", lambda t: t.meta["level"] == 3, lambda ref, q: f"I think it is \\boxed{{{_off_by_one(ref)}}}."),
    ("no answer", lambda t: t.meta["level"] == 2, lambda ref, q: "Hmm, I am not sure how to solve this."),
    ("LaTeX, unsimplified", lambda t: t.reference.startswith("\\frac{\\sqrt"), lambda ref, q: _unsimplified_root(q)),
    ("copies the question", lambda t: t.meta["family"] == "expand", lambda ref, q: _copy_question(q)),
    ("adversarial", lambda t: t.meta["level"] == 4, lambda ref, q: "\\boxed{9^{9^{9^{9}}}}"),
]


def main() -> None:
    """Roll out one episode per style and print prompt, completion, reward and reason."""
    env = gym.make("grpo/Math-v0", split="test")
    bandit = cast(TextBanditEnv, env.unwrapped)
    tasks = bandit.tasks
    total = 0.0
    used: set[int] = set()
    for episode, (label, wanted, write) in enumerate(STYLES):
        task_id = next(k for k in range(len(tasks)) if k not in used and wanted(tasks[k]))
        used.add(task_id)
        prompt, info = env.reset(options={"task_id": task_id})
        task = bandit.task
        assert task is not None  # just reset
        completion = write(task.reference, task.prompt)
        _, reward, _, _, info = env.step(completion)
        total += float(reward)
        print(f"--- episode {episode}: task {info['task_name']}, policy style: {label}")
        print(textwrap.indent(prompt, "  prompt     | "))
        print(textwrap.indent(completion, "  completion | "))
        print(
            f"  reward {reward:g}  reason={info['reason']}  parsed={info['parsed']!r}  "
            f"reference={info['reference']!r}  (found by {info['strategy']}, compared by {info['method']})"
        )
        if "message" in info:
            print(f"  why: {info['message']}")
    print(f"\nmean reward over {len(STYLES)} episodes: {total / len(STYLES):.2f}")
    env.close()


if __name__ == "__main__":
    main()
