"""The math verifier: answer extraction, the equivalence policy, and its failure modes."""

from __future__ import annotations

import time

import pytest

from grpo_envs.verify.math import (
    MAX_ANSWER_CHARS,
    check_math_answer,
    extract_answer,
    extract_answer_with_strategy,
    is_expanded,
    normalize_answer,
    parse_plain_number,
    verify_math_answer,
)
from grpo_envs.verify.math_sympy import AnswerParseError, compare_answers, parse_answer

# -- extraction -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected", "strategy"),
    [
        (r"First \boxed{3}." "\n\n" r"Then, finally, $\boxed{\frac{3}{4}}$.", r"\frac{3}{4}", "boxed"),
        (r"First \boxed{3}, then finally $\boxed{\frac{3}{4}}$.", r"3, \frac{3}{4}", "boxed"),  # one list
        (r"\boxed{\frac{\sqrt{2}}{2}}", r"\frac{\sqrt{2}}{2}", "boxed"),
        (r"\boxed{\{1, 2\}}", r"\{1, 2\}", "boxed"),
        (r"so it is \boxed 5 indeed", "5", "boxed"),
        (r"\fbox{12}", "12", "boxed"),
        ("He pays 3 * 4 = 12.\n#### 12", "12", "hash"),
        ("#### 1,500\n", "1,500", "hash"),
        ("So the answer is 7.", "7", "answer_is"),
        ("The final answer is $\\frac{1}{2}$. Done", "\\frac{1}{2}", "answer_is"),
        ("We set $x = 2$, so the answer is 7.", "7", "answer_is"),  # prose after the last formula wins
        ("**Final answer:** 3.5 apples.", "3.5 apples", "answer_is"),
        ("Answer: x = -3\nThat's it", "x = -3", "answer_is"),
        ("We get 5 - 3 = 2", "2", "last_number"),
        ("Temperature drops to -7 degrees", "-7", "last_number"),
        ("It costs 1,250 dollars or 3/4 of that", "3/4", "last_number"),
        ("A rise of 50%", "50%", "last_number"),
    ],
)
def test_extraction_strategies(text: str, expected: str, strategy: str) -> None:
    assert extract_answer_with_strategy(text) == (expected, strategy)


def test_the_order_of_strategies_is_configurable() -> None:
    text = "The answer is 4. \\boxed{5}\n#### 6"
    assert extract_answer(text) == "5"
    assert extract_answer(text, strategies=["hash", "boxed"]) == "6"
    assert extract_answer(text, strategies=["answer_is"]) == "4"
    assert extract_answer("no digits here", strategies=["boxed", "last_number"]) is None
    assert extract_answer(r"\boxed{unclosed 5", strategies=["boxed"]) is None  # malformed: not guessed
    with pytest.raises(ValueError, match="unknown answer-extraction strategy 'regex'"):
        extract_answer("5", strategies=["regex"])


def test_no_answer_is_parse_failed() -> None:
    result = verify_math_answer("I am not sure.", "5")
    assert (result.reward, result.reason, result.parsed) == (0.0, "parse_failed", None)
    assert "no final answer" in result.details["message"]


# -- normalisation and parsing ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("$1,000$", "1000"),
        ("\\$1{,}000.", "1000"),
        ("1 000 000", "1000000"),
        ("x = \\left(\\frac{1}{2}\\right)", "(\\frac{1}{2})"),
        ("\\text{18 dollars}", "18"),
        ("90^\\circ", "90"),
        ("50\\%", "50%"),
        ("\u22127 \u00d7 \u03c0", "-7 * \\pi"),
        ("\\dfrac{3}{4}", "\\frac{3}{4}"),
        ("2 pi", "2 pi"),  # a constant is not a unit
        ("(1,2)", "(1,2)"),  # a tuple is not a thousands-separated number
    ],
)
def test_normalize_answer(raw: str, normalised: str) -> None:
    assert normalize_answer(raw) == normalised


def test_plain_numbers_are_read_exactly_and_others_are_left_to_sympy() -> None:
    from fractions import Fraction

    assert parse_plain_number("-0.75") == (Fraction(-3, 4), False)
    assert parse_plain_number("\\frac{3}{4}") == (Fraction(3, 4), False)
    assert parse_plain_number("50%") == (Fraction(50), True)
    for not_plain in ("1e5", "\\sqrt{2}", "2x", "1/0", "(1,2)"):
        assert parse_plain_number(not_plain) is None


def test_parser_reads_latex_and_plain_text_to_the_same_expression() -> None:
    import sympy

    x = sympy.Symbol("x")
    assert parse_answer("x^{2}+2x+1")[0] == parse_answer("x**2 + 2*x + 1")[0] == x**2 + 2 * x + 1
    assert parse_answer("\\frac{\\sqrt{2}}{2}")[0] == sympy.sqrt(2) / 2
    assert parse_answer("\\frac12")[0] == sympy.Rational(1, 2)
    assert parse_answer("\\sqrt[3]{x}")[0] == x ** sympy.Rational(1, 3)
    assert parse_answer("(1, 2)")[0] == (1, 2)
    assert parse_answer("12.5\\%") == (sympy.Rational(25, 2), True)


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('true')",  # no eval(), and none of these characters parse
        "().__class__",
        "x_{__}",
        "\\input{/etc/passwd}",
        "1/0",
        "12 15",
        "(1, 2",
        "",
    ],
)
def test_parser_refuses_what_is_not_an_answer(text: str) -> None:
    with pytest.raises(AnswerParseError):
        parse_answer(text)


def test_is_expanded() -> None:
    for expanded in ("x^2+2x+1", "x^{2} - 9", "3x^2+5x+2", "\\boxed{x^2}"):
        assert is_expanded(expanded), expanded
    for grouped in ("(x+1)^2", "{x+1}^2", "(x-3)(x+3)", "[x+1]^2", "\\left(x+1\\right)^2"):
        assert not is_expanded(grouped), grouped


# -- the equivalence table ----------------------------------------------------------------------

#: (reference, answer, equivalent?) - the documented policy of docs/math.md, case by case.
EQUIVALENCE_TABLE: list[tuple[str, str, bool]] = [
    # plain numbers and formatting variants
    ("72", "72", True),
    ("72", "73", False),
    ("1000", "1,000", True),
    ("1000", "1{,}000", True),
    ("1234567", "1,234,567", True),
    ("1000", "1,0000", False),
    ("1000000", "1000001", False),  # no tolerance between two integers
    ("5", "$5", True),
    ("5", "\\$5", True),
    ("5", "$5.00", True),
    ("18", "18 dollars", True),
    ("18", "\\text{18 dollars}", True),
    ("18", "180", False),
    ("12", "12.", True),
    ("90", "90^\\circ", True),
    ("-7", "\u22127", True),
    ("-7", "7", False),
    # percentages
    ("0.5", "50%", True),
    ("50", "50%", True),
    ("50%", "50", True),
    ("50%", "0.5", True),
    ("50\\%", "50%", True),
    ("50%", "0.5%", False),
    ("0.5", "5", False),
    # fractions and decimals
    ("3/4", "0.75", True),
    ("0.75", "\\frac{3}{4}", True),
    ("\\frac{3}{4}", "\\dfrac{3}{4}", True),
    ("\\frac{3}{4}", "6/8", True),
    ("\\frac14", "0.25", True),
    ("-\\frac{1}{2}", "-0.5", True),
    ("\\frac{-1}{2}", "-1/2", True),
    ("1/2", "\\tfrac{1}{2}", True),
    ("1.5", "3/2", True),
    ("2", "2.0", True),
    ("1/3", "0.3333333", True),  # within the relative tolerance 1e-6
    ("1/3", "0.333", False),
    ("3/4", "4/3", False),
    ("1000000", "10^6", True),
    ("1000000", "1e6", True),
    ("1024", "2^{10}", True),
    ("3628800", "10!", True),
    ("6", "2\\cdot 3", True),
    ("6", "2 \\times 3", True),
    ("\\frac14", "\\left(\\frac{1}{2}\\right)^2", True),
    # surds, constants, complex numbers
    ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", True),
    ("\\frac{\\sqrt{2}}{2}", "sqrt(2)/2", True),
    ("\\frac{\\sqrt{2}}{2}", "0.7071067811865476", True),
    ("\\frac{\\sqrt{2}}{2}", "0.7071", False),  # rounded beyond the tolerance
    ("\\frac{\\sqrt{2}}{2}", "\\sqrt{2}", False),
    ("5\\sqrt{2}", "\\sqrt{50}", True),
    ("5\\sqrt{2}", "5\\sqrt{3}", False),
    ("2\\sqrt{3}", "\\sqrt{12}", True),
    ("\\frac{10\\sqrt{7}}{7}", "\\frac{10}{\\sqrt{7}}", True),
    ("2", "\\sqrt[3]{8}", True),
    ("\\pi", "\u03c0", True),
    ("\\pi", "3.14", False),
    ("2\\pi", "2 \\pi", True),
    ("\\frac{\\pi}{2}", "\\pi/2", True),
    ("\\infty", "\u221e", True),
    ("-1", "e^{i\\pi}", True),
    ("3+2i", "2i+3", True),
    ("3+2i", "3-2i", False),
    # symbolic answers
    ("x^2+2x+1", "(x+1)^2", True),
    ("x^2+2x+1", "x^{2} + 2x + 1", True),
    ("x^2+2x+1", "1 + 2*x + x**2", True),
    ("x^2+2x+1", "x^2+2x+2", False),
    ("x^2+2x+1", "(x-1)^2", False),
    ("x^2-9", "(x-3)(x+3)", True),
    ("2x^2-6x+4", "2(x-1)(x-2)", True),
    ("x+y", "y+x", True),
    ("x+y", "x-y", False),
    ("\\frac{x}{2}", "0.5x", True),
    ("2x", "2", False),
    ("1", "\\sin^2 x + \\cos^2 x", True),
    ("\\frac{1}{x}", "x^{-1}", True),
    # equations, tuples and sets
    ("3", "x = 3", True),
    ("\\frac{7}{2}", "x=3.5", True),
    ("3", "x = 4", False),
    ("(3,2)", "(3, 2)", True),
    ("(3,2)", "(2,3)", False),  # a tuple is ordered
    ("(3,2)", "3", False),
    ("\\{1,2\\}", "\\{2,1\\}", True),  # a set is not
    ("\\{1,2\\}", "\\{1,3\\}", False),
]


@pytest.mark.parametrize(("reference", "answer", "equivalent"), EQUIVALENCE_TABLE)
def test_equivalence_table(reference: str, answer: str, equivalent: bool) -> None:
    result = check_math_answer(answer, reference)
    assert result.correct is equivalent, (reference, answer, result)
    assert result.reward == (1.0 if equivalent else 0.0)
    if not equivalent:
        assert result.reason in ("wrong", "parse_failed")


def test_table_is_big_and_balanced() -> None:
    verdicts = [equivalent for _, _, equivalent in EQUIVALENCE_TABLE]
    assert len(EQUIVALENCE_TABLE) >= 60 and verdicts.count(False) >= 20
    assert len({(r, a) for r, a, _ in EQUIVALENCE_TABLE}) == len(EQUIVALENCE_TABLE)


def test_fast_path_agrees_with_sympy_on_every_plain_number_pair() -> None:
    """The parent-side Fraction shortcut must give the verdict sympy would give."""
    checked = 0
    for reference, answer, _ in EQUIVALENCE_TABLE:
        fast = check_math_answer(answer, reference)
        if fast.details["method"] != "fast":
            continue
        reason, _, _ = compare_answers(answer, reference, 1e-6, 1e-9)  # in-process, no fast path
        assert reason == fast.reason, (reference, answer)
        checked += 1
    assert checked >= 20


def test_the_tolerance_is_configurable() -> None:
    assert check_math_answer("0.333", "1/3").correct is False
    assert check_math_answer("0.333", "1/3", rel_tol=1e-2).correct is True
    assert check_math_answer("0.7071", "\\frac{\\sqrt{2}}{2}", rel_tol=1e-3).correct is True


def test_an_unparseable_reference_is_an_error_not_the_policys_fault() -> None:
    result = check_math_answer("5", "\\weird{5}")
    assert (result.correct, result.reason) == (False, "error")
    assert "reference" in result.details["message"]


def test_verify_reports_strategy_method_and_parsed_answer() -> None:
    result = verify_math_answer("Expanding gives $\\boxed{(x+1)^2}$.", "x^2+2x+1")
    assert (result.reward, result.reason, result.parsed) == (1.0, "correct", "(x+1)^2")
    assert result.details == {"strategy": "boxed", "method": "exact"}


@pytest.mark.parametrize("bad", [None, b"5", 5])
def test_non_str_completion_raises_type_error(bad: object) -> None:
    with pytest.raises(TypeError, match="must be a str"):
        verify_math_answer(bad, "5")  # type: ignore[arg-type]


# -- adversarial answers ----------------------------------------------------------------------

REFUSED = ("timeout", "parse_failed")
#: name -> (completion, acceptable reasons). The first six are the issue's list: they must be
#: refused outright; the rest are legal expressions that are merely wrong.
ADVERSARIAL: dict[str, tuple[str, tuple[str, ...]]] = {
    "exponent tower": ("\\boxed{9^{9^{9^9}}}", REFUSED),
    "python power tower": ("the answer is 10**10**8", REFUSED),
    "100 KB string": ("\\boxed{" + "9" * 100_000 + "}", REFUSED),
    "100 KB of prose": ("blah " * 20_000, REFUSED),
    "5000 nested parentheses": ("\\boxed{" + "(" * 5000 + "1" + ")" * 5000 + "}", REFUSED),
    "control characters": ("\\boxed{1\x00\x07\x1b[2J}", REFUSED),
    "huge factorial": ("\\boxed{100000!}", REFUSED),
    "huge scientific notation": ("\\boxed{1e999999999}", REFUSED),
    "symbolic blow-up": ("\\boxed{(x+1)^{100000}}", ("wrong", *REFUSED)),
    "minus chain": ("\\boxed{" + "-" * 900 + "1}", ("wrong",)),
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_adversarial_answers_score_zero_quickly_and_the_verifier_keeps_working(name: str) -> None:
    completion, reasons = ADVERSARIAL[name]
    timeout = 1.0
    check_math_answer("x+1", "1+x")  # the worker is up, so the time below is the answer's own
    start = time.monotonic()
    result = verify_math_answer(completion, "x^2+2x+1", timeout=timeout)
    elapsed = time.monotonic() - start
    assert result.reward == 0.0 and result.correct is False
    assert result.reason in reasons, result
    assert elapsed < timeout + 0.5, f"{name} took {elapsed:.2f} s"
    assert verify_math_answer("\\boxed{(x+1)^2}", "x^2+2x+1", timeout=timeout).correct is True


def test_number_adversaries_are_refused_by_the_guards_not_the_clock() -> None:
    for text in ("9^{9^{9^9}}", "10**10**8", "100000!", "1e999999999"):
        result = check_math_answer(text, "1")
        assert result.reason == "parse_failed" and "too large" in result.details["message"], result
    assert check_math_answer("9" * (MAX_ANSWER_CHARS + 1), "1").reason == "parse_failed"


def test_a_hung_comparison_is_killed_at_the_timeout_and_the_next_one_works() -> None:
    # Equal, but proving it needs a large polynomial expansion: legal input that takes seconds.
    check_math_answer("x+1", "1+x")
    start = time.monotonic()
    result = check_math_answer("(x+1)^{400}", "(x+1)^{200}(x^2+2x+1)^{100}", timeout=0.2)
    assert result.reason == "timeout" and result.reward == 0.0
    assert time.monotonic() - start < 0.2 + 0.5
    assert check_math_answer("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}").correct is True
