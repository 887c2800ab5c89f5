"""Answer extraction: every environment of issue 17's order, several boxes, prices in prose."""

from __future__ import annotations

import pytest

from grpo_envs.verify.math import extract_answer, extract_answer_with_strategy, verify_math_answer
from grpo_envs.verify.math_extract import DEFAULT_STRATEGIES


def test_the_default_order_is_boxed_math_env_answer_is_hash_last_number() -> None:
    assert DEFAULT_STRATEGIES == ("boxed", "math_env", "answer_is", "hash", "last_number")


@pytest.mark.parametrize(
    ("text", "expected", "strategy"),
    [
        (r"so \boxed{\frac{1}{3}}", r"\frac{1}{3}", "boxed"),
        (r"so \fbox{7}", "7", "boxed"),
        (r"roots \boxed{2} and \boxed{3}", "2, 3", "boxed"),  # several boxes: one list
        (r"\boxed{5}, that is \boxed{5}", "5", "boxed"),  # the same box twice: one answer
        ("First \\boxed{5}.\n\nNo, actually \\boxed{3}.", "3", "boxed"),  # a blank line ends a list
        (r"Hence $k = \frac{1}{3}$.", r"k = \frac{1}{3}", "math_env"),
        (r"Hence $$\frac{1}{3}$$", r"\frac{1}{3}", "math_env"),
        (r"Hence \( \frac13 \)", r"\frac13", "math_env"),
        ("Hence \\[\n\\sqrt{17}\n\\]", r"\sqrt{17}", "math_env"),
        (r"We find $x=2$ and then $\sqrt{17}$", r"\sqrt{17}", "math_env"),  # the last one
        (r"Answer $ \frac{1}{2} \$ = \frac{10}{9} $", r"\frac{1}{2} \$ = \frac{10}{9}", "math_env"),
        ("We set $x = 2$, so the answer is 7.", "7", "answer_is"),  # prose after the formula
        ("We set $x = 2$.\n#### 7", "7", "hash"),
        ("It costs $5 and $7, so 12 in all", "12", "last_number"),  # prices are not math
        ("so the distance is 13", "13", "last_number"),
    ],
)
def test_each_environment(text: str, expected: str, strategy: str) -> None:
    assert extract_answer_with_strategy(text) == (expected, strategy)


def test_math_environments_fix_the_last_number_misreadings() -> None:
    """Issue 17: ``\\frac13`` was read as 13 and ``$\\sqrt{17}$`` as 17 by the last-number fallback."""
    assert verify_math_answer(r"so $\frac13$", "1/3").correct
    assert not verify_math_answer(r"so $\frac13$", "13").correct
    assert verify_math_answer(r"so $\sqrt{17}$", r"\sqrt{17}").correct
    assert not verify_math_answer(r"so $\sqrt{17}$", "17").correct


def test_strategies_stay_configurable() -> None:
    text = "We get $x = 4$. The answer is 5.\n#### 6"
    assert extract_answer(text, strategies=["hash"]) == "6"
    assert extract_answer(text, strategies=["answer_is"]) == "5"
    assert extract_answer("only $x = 4$ here", strategies=["math_env"]) == "x = 4"
    assert extract_answer("no math here", strategies=["math_env"]) is None
    result = verify_math_answer(r"$\frac{1}{2}$", "1/2", strategies=["boxed"])
    assert result.reason == "parse_failed"


@pytest.mark.parametrize(
    ("text", "expected", "strategy"),
    [
        ("Final Answer: The volume of $ABCD$ is 120. I hope it is correct.", "120", "answer_is"),
        ("So the answer is: it grew for 3 hours.", "3", "answer_is"),
        ("The answer is 10 or 11.", "10 or 11", "answer_is"),  # several values: kept whole, a hedge
        ("The answer is between 12 and 13.", "between 12 and 13", "answer_is"),
        ("**Final answer:** 3.5 apples.", "3.5 apples", "answer_is"),  # a value with its units
        (r"first \boxed{200}, then \boxed{255}. The final answer is $10,455$.", "10,455", "answer_is"),
        (r"The final answer is $7$. Note: we used $x = 2$ and $y$.", "7", "answer_is"),  # rambling after
        (r"\frac{10}{9}", r"\frac{10}{9}", "last_number"),  # a bare formula is read whole
        (r"\boxed{\frac{3}{4}", "4", "last_number"),  # a malformed box is never read whole
        ("AZYUK2A", None, None),  # a digit inside a word is no number
        (
            r"It is $ \begin{pmatrix}1 & 0 \\ 0 & 1\end{pmatrix} $.",
            r"\begin{pmatrix}1 & 0 \\ 0 & 1\end{pmatrix}",
            "math_env",
        ),
    ],
)
def test_prose_statements_and_bare_formulas(text: str, expected: str | None, strategy: str | None) -> None:
    found = extract_answer_with_strategy(text)
    assert found == (None if expected is None else (expected, strategy))
