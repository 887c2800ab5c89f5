"""Hedging never pays: several candidates against a single-valued reference score 0."""

from __future__ import annotations

import time

import pytest

from grpo_envs.verify.math import check_math_answer, verify_math_answer
from grpo_envs.verify.math_forms import offers_several, text_answer


@pytest.mark.parametrize(
    "completion",
    [
        r"\boxed{10} or \boxed{11}",
        r"\boxed{10, 11, 12}",
        "the answer is 10 or 11",
        r"\boxed{\{10, 11\}}",
        r"\boxed{(9, 11)}",
        r"\boxed{[9.5, 10.5]}",
        r"\boxed{10 \pm 1}",
        r"\boxed{\approx 10}",
        r"\boxed{9 \le x \le 11}",
        r"\boxed{10, \ldots}",
        r"$x = 10$ or $x = 11$, i.e. \boxed{x = 10 \text{ or } x = 11}",
    ],
)
def test_several_candidates_for_one_value_score_zero(completion: str) -> None:
    for reference in ("10", "11"):
        result = verify_math_answer(completion, reference)
        assert (result.reward, result.correct) == (0.0, False), (completion, reference, result)


def test_a_hedge_is_reported_as_such() -> None:
    result = check_math_answer(r"10 \pm 1", "10")
    assert (result.reason, result.details["method"]) == ("wrong", "hedge")
    assert "several candidates" in result.details["message"]


def test_a_set_or_list_reference_is_matched_as_a_whole() -> None:
    assert verify_math_answer(r"\boxed{2, 3}", "2, 3").correct
    assert verify_math_answer(r"\boxed{3} and \boxed{2}", r"\{2, 3\}").correct
    for partial in (r"\boxed{2}", r"\boxed{3}", r"\boxed{2, 3, 4}", r"\boxed{\{2\}}"):
        assert not verify_math_answer(partial, "2, 3").correct, partial
        assert not verify_math_answer(partial, r"\{2, 3\}").correct, partial
    assert verify_math_answer(r"\boxed{1 + \sqrt{2}, 1 - \sqrt{2}}", r"1 \pm \sqrt{2}").correct
    assert not verify_math_answer(r"\boxed{1 + \sqrt{2}}", r"1 \pm \sqrt{2}").correct


def test_offers_several_and_text_answer() -> None:
    assert not offers_several("10")
    assert not offers_several("(x+1)(x-1)")
    assert not offers_several("2x+2=0")
    assert offers_several("x = 1 = 2")
    assert text_answer(r"\text{odd}") == "odd"
    assert text_answer("sin") is None  # a math name is never prose
    assert text_answer("(D)") == "choice:d"
    # Text is compared as text, not as a product of symbols: "odd" is not "dod".
    assert not verify_math_answer(r"\boxed{dod}", r"\text{odd}").correct


def test_equal_forms_share_one_deadline() -> None:
    """Listing one slow answer several times buys no verifier time (timeout + 0.5 s in all)."""
    check_math_answer("x", "x")  # the worker is up
    slow = "(x+1)^{400}"
    start = time.monotonic()
    result = check_math_answer(f"{slow}, {slow}, {slow}", "(x+1)^{200}(x^2+2x+1)^{100}", timeout=0.3)
    assert result.reward == 0.0 and time.monotonic() - start < 0.3 + 0.5
    assert check_math_answer(r"15\frac{39}{40}, \frac{639}{40}", r"\frac{639}{40}").correct
