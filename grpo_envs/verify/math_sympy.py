"""Parse math answers (plain text or LaTeX) into sympy, and compare two of them.

This module runs inside the verifier worker (:func:`grpo_envs.verify.math.get_math_worker`),
never on the caller's thread: parsing and simplifying untrusted text can take unbounded time.

Why a parser of our own rather than ``sympy.parse_expr`` or ``sympy.parsing.latex``:

- ``parse_expr`` calls ``eval`` on text built from the input, with Python's builtins in
  scope: an answer is untrusted input and must not reach ``eval``.
- ``parse_latex`` needs ``antlr4-python3-runtime==4.11`` exactly, while math-verify (which
  the benchmark runs in the same environment) installs antlr 4.13; the ``lark`` backend is a
  further dependency. This parser needs nothing but sympy.
- Building the expression ourselves lets us refuse an exponent tower (``9^{9^{9^9}}``,
  ``10**10**8``) before sympy tries to evaluate it.

Grammar (loosest binding first)::

    answer  := expr ("," expr)*                   a tuple when there are several
    expr    := term (("+" | "-") term)*
    term    := signed (("*" | "/" | \\cdot | \\times | \\div | <implicit>) signed)*
    signed  := ("+" | "-")* power
    power   := postfix ("^" exponent)?             right-associative
    postfix := primary "!"*
    primary := number | letter | "(" answer ")" | "[" answer "]" | "{" expr "}" | "|" expr "|"
             | \\frac group group | \\sqrt ("[" expr "]")? group | function argument | constant
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

import sympy

from grpo_envs.verify.math import normalize_answer, numbers_match
from grpo_envs.verify.result import CORRECT, PARSE_FAILED, WRONG

#: A numeric power whose exact value would need more bits than this is refused
#: (``2^{65536}`` is allowed; ``9^{9^9}`` needs about 1.2e9 bits).
MAX_RESULT_BITS = 200_000
#: Largest integer exponent on a non-rational base.
MAX_EXPONENT = 100_000
#: Largest factorial argument: 10000! has about 118,000 bits (under MAX_RESULT_BITS), and
#: olympiad answers reach 2006! (``\frac{1}{2006!}``).
MAX_FACTORIAL = 10_000
#: Largest decimal exponent of scientific notation (``1e999`` is fine, ``1e999999999`` is not).
MAX_SCIENTIFIC_EXPONENT = 10_000
#: Precision (significant digits) of numeric comparisons; far above any tolerance used.
EVAL_DIGITS = 30
#: Values substituted for free symbols in the numeric check: irrational-looking, positive
#: (so that sqrt/log stay on their principal branch), distinct per symbol.
TEST_POINTS = (0.5377, 1.8339, 2.2588)


class AnswerParseError(ValueError):
    """The answer is not a math expression this parser understands (or is too large)."""


class SolutionList(tuple):
    """Answers written as a bare list (``2, 3``, or several boxes): order does not matter."""


# -- tokens -----------------------------------------------------------------------------------

_FUNCTIONS = {
    "sin": sympy.sin,
    "cos": sympy.cos,
    "tan": sympy.tan,
    "cot": sympy.cot,
    "sec": sympy.sec,
    "csc": sympy.csc,
    "arcsin": sympy.asin,
    "arccos": sympy.acos,
    "arctan": sympy.atan,
    "sinh": sympy.sinh,
    "cosh": sympy.cosh,
    "tanh": sympy.tanh,
    "ln": sympy.log,
    "log": sympy.log,
    "exp": sympy.exp,
    "sqrt": sympy.sqrt,
    "abs": sympy.Abs,
}
_CONSTANTS = {"pi": sympy.pi, "infty": sympy.oo, "infinity": sympy.oo, "inf": sympy.oo, "oo": sympy.oo}
_GREEK = {
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "varepsilon",
    "zeta",
    "eta",
    "theta",
    "vartheta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "rho",
    "sigma",
    "tau",
    "upsilon",
    "phi",
    "varphi",
    "chi",
    "psi",
    "omega",
}
_MULTIPLY = {"cdot", "times", "ast"}
_DIVIDE = {"div"}
# Plain-text words read as one token; any other run of letters is a product of single letters.
_WORDS = set(_FUNCTIONS) | {"pi", "oo", "inf", "infinity"}

_TOKEN = re.compile(
    r"\s*(?:"
    r"(?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+(?![A-Za-z]))?)"
    r"|\\(?P<command>[A-Za-z]+)"
    r"|\\(?P<escaped>[{}|])"
    r"|(?P<letters>[A-Za-z]+)"
    r"|(?P<subscript>_(?:\{[A-Za-z0-9]+\}|[A-Za-z0-9]))"
    r"|(?P<op>\*\*|[-+*/^()\[\]{},!|=%])"
    r")"
)


def tokenize(text: str) -> list[tuple[str, str]]:
    """Split normalised answer text into ``(kind, value)`` tokens.

    :raises AnswerParseError: on a character that has no meaning in an answer.
    """
    tokens: list[tuple[str, str]] = []
    position, end = 0, len(text.rstrip())
    while position < end:
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise AnswerParseError(f"unexpected character {text[position:].lstrip()[:1]!r}")
        position = match.end()
        kind = match.lastgroup
        value = match.group(kind)  # type: ignore[arg-type]
        if kind == "letters":
            if value in _WORDS:
                tokens.append(("name", value))
            else:
                tokens.extend(("name", letter) for letter in value)
        elif kind == "subscript":
            if not tokens or tokens[-1][0] != "name" or len(tokens[-1][1]) != 1:
                raise AnswerParseError("a subscript must follow a single letter, as in x_1")
            tokens[-1] = ("name", tokens[-1][1] + "_" + value[1:].strip("{}"))
        elif kind == "op":
            tokens.append(("op", "^" if value == "**" else value))
        elif kind == "escaped":
            tokens.append(("op", {"{": "\\{", "}": "\\}", "|": "|"}[value]))
        else:
            tokens.append((kind, value))  # type: ignore[arg-type]
    return tokens


# -- guarded constructors ---------------------------------------------------------------------


def _power(base: sympy.Expr, exponent: sympy.Expr) -> sympy.Expr:
    """``base ** exponent``, refusing results too large to build."""
    if exponent.is_Rational and exponent.is_number:
        e = abs(exponent)
        if base.is_Rational:
            if base in (0, 1, -1):
                return sympy.Pow(base, exponent)
            bits = max(abs(base.p).bit_length(), abs(base.q).bit_length())
            if bits * e > MAX_RESULT_BITS:
                raise AnswerParseError(f"the number {base}^{exponent} is too large to evaluate")
        elif e > MAX_EXPONENT:
            raise AnswerParseError(f"the exponent {exponent} is too large")
    elif exponent.is_Float and abs(exponent) > MAX_EXPONENT:
        raise AnswerParseError(f"the exponent {exponent} is too large")
    return sympy.Pow(base, exponent)


def _factorial(value: sympy.Expr) -> sympy.Expr:
    if value.is_Integer and value > MAX_FACTORIAL:
        raise AnswerParseError(f"{value}! is too large to evaluate")
    return sympy.factorial(value)


def _number(text: str) -> sympy.Expr:
    _, _, exponent = text.lower().partition("e")
    if exponent and abs(int(exponent)) > MAX_SCIENTIFIC_EXPONENT:
        raise AnswerParseError(f"the number {text} is too large")
    return sympy.Rational(text)  # exact: 0.75 is 3/4, not a float


# -- parser -----------------------------------------------------------------------------------


class _Parser:
    """Recursive-descent parser over :func:`tokenize`'s tokens (grammar in the module docstring)."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.i = 0

    # token helpers
    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def accept(self, kind: str, value: str | None = None) -> bool:
        token = self.peek()
        if token is not None and token[0] == kind and (value is None or token[1] == value):
            self.i += 1
            return True
        return False

    def expect(self, kind: str, value: str) -> None:
        if not self.accept(kind, value):
            found = self.peek()
            raise AnswerParseError(f"expected {value!r}, found {found[1] if found else 'the end'!r}")

    # grammar
    def answer(self) -> Any:
        items = [self.expr()]
        while self.accept("op", ","):
            items.append(self.expr())
        return items[0] if len(items) == 1 else tuple(items)

    def top_level(self) -> Any:
        """A whole answer: a bare list ``2, 3`` is a :class:`SolutionList`, not a tuple."""
        items = [self.expr()]
        while self.accept("op", ","):
            items.append(self.expr())
        return items[0] if len(items) == 1 else SolutionList(items)

    def expr(self) -> sympy.Expr:
        value = self.term()
        while True:
            if self.accept("op", "+"):
                value = value + self.term()
            elif self.accept("op", "-"):
                value = value - self.term()
            else:
                return value

    def _starts_primary(self) -> bool:
        token = self.peek()
        if token is None:
            return False
        kind, value = token
        if kind in ("number", "name"):
            return True
        if kind == "command":
            return value not in _MULTIPLY | _DIVIDE
        return kind == "op" and value in ("(", "[", "{", "\\{")

    def term(self) -> sympy.Expr:
        value = self.signed()
        while True:
            token = self.peek()
            if token in (("op", "*"),) or (token is not None and token[0] == "command" and token[1] in _MULTIPLY):
                self.i += 1
                value = value * self.signed()
            elif token == ("op", "/") or (token is not None and token[0] == "command" and token[1] in _DIVIDE):
                self.i += 1
                value = value / self.signed()
            elif token is not None and self._starts_primary():
                if token[0] == "number" and self.tokens[self.i - 1][0] == "number":
                    # "12 15" is two answers, not 180 (and "1 000" is a thousands separator
                    # that normalisation did not recognise): refuse rather than guess.
                    raise AnswerParseError(f"two numbers in a row: {self.tokens[self.i - 1][1]} {token[1]}")
                value = value * self.signed()  # implicit multiplication: 2x, 2\pi, (x+1)(x-1)
            else:
                return value

    def signed(self) -> sympy.Expr:
        negative = False
        while True:  # iterative, so that "- - - - 1" cannot exhaust the recursion limit
            if self.accept("op", "-"):
                negative = not negative
            elif not self.accept("op", "+"):
                break
        value = self.power()
        return -value if negative else value

    def power(self) -> sympy.Expr:
        base = self.postfix()
        if self.accept("op", "^"):
            exponent = self.group() if self.peek() == ("op", "{") else self.signed()
            return _power(base, exponent)
        return base

    def postfix(self) -> sympy.Expr:
        value = self.primary()
        while self.accept("op", "!"):
            value = _factorial(value)
        return value

    def group(self) -> sympy.Expr:
        """A LaTeX argument: ``{...}``, or a single digit or token (``\\frac12``, ``\\sqrt2``)."""
        if self.accept("op", "{"):
            value = self.expr()
            self.expect("op", "}")
            return value
        token = self.peek()
        if token is not None and token[0] == "number" and len(token[1]) > 1 and token[1].isdigit():
            self.tokens[self.i] = ("number", token[1][1:])  # \frac12: one digit per argument
            return sympy.Integer(int(token[1][0]))
        return self.primary()

    def function_argument(self) -> sympy.Expr:
        if self.accept("op", "("):
            value = self.expr()
            self.expect("op", ")")
            return value
        if self.peek() == ("op", "{"):
            return self.group()
        value = self.power()  # \sin x, \ln 2
        while True:  # \sin 2x is sin(2x): plain letters right after the argument belong to it
            token = self.peek()
            if token is None or token[0] != "name" or token[1] in _FUNCTIONS:
                return value
            value = value * self.power()

    def apply_function(self, name: str) -> sympy.Expr:
        exponent = None
        if self.accept("op", "^"):  # \sin^2 x
            exponent = self.group() if self.peek() == ("op", "{") else self.postfix()
        value = _FUNCTIONS[name](self.function_argument())
        return value if exponent is None else _power(value, exponent)

    def primary(self) -> Any:
        token = self.peek()
        if token is None:
            raise AnswerParseError("the answer ends too early")
        kind, value = token
        self.i += 1
        if kind == "number":
            return _number(value)
        if kind == "name":
            if value in _FUNCTIONS:
                return self.apply_function(value)
            if value in _CONSTANTS:
                return _CONSTANTS[value]
            if value == "e":
                return sympy.E
            if value == "i":
                return sympy.I
            return sympy.Symbol(value)
        if kind == "command":
            if value == "frac":
                numerator = self.group()
                return numerator / self.group()
            if value == "sqrt":
                if self.accept("op", "["):
                    index = self.expr()
                    self.expect("op", "]")
                    return _power(self.group(), 1 / index)
                return sympy.sqrt(self.group())
            if value in _FUNCTIONS:
                return self.apply_function(value)
            if value in _CONSTANTS:
                return _CONSTANTS[value]
            if value in _GREEK:
                return sympy.Symbol(value)
            if value in ("boxed", "fbox"):
                return self.group()
            raise AnswerParseError(f"the LaTeX command \\{value} is not supported in an answer")
        if value in ("(", "["):
            inner = self.answer()
            self.expect("op", ")" if value == "(" else "]")
            if value == "[" and isinstance(inner, tuple):
                # [a, b] is a closed interval as often as a list: math-verify's parser decides.
                raise AnswerParseError("a bracketed list [a, b] is read by the structured parser")
            return inner
        if value == "{":
            inner = self.expr()
            self.expect("op", "}")
            return inner
        if value == "\\{":
            inner = self.answer()
            self.expect("op", "\\}")
            return frozenset(inner if isinstance(inner, tuple) else (inner,))
        if value == "|":
            inner = self.expr()
            self.expect("op", "|")
            return sympy.Abs(inner)
        raise AnswerParseError(f"unexpected {value!r}")


def parse_answer(text: str) -> tuple[Any, bool]:
    """Parse an answer into ``(value, is_percent)``.

    ``value`` is a sympy expression, a tuple of them (``(1, 2)``, ``1, 2``) or a frozenset
    (``\\{1, 2\\}``). Decimals become exact rationals (``0.75`` is ``3/4``).

    :raises AnswerParseError: when the text is not an answer this parser understands, or
        the value is too large to build, or undefined (``1/0``).

    Example::

        >>> parse_answer("\\\\frac{\\\\sqrt{2}}{2}")
        (sqrt(2)/2, False)
        >>> parse_answer("50\\\\%")
        (50, True)
    """
    normalised = normalize_answer(text)
    percent = normalised.endswith("%")
    body = normalised[:-1] if percent else normalised
    if not body.strip():
        raise AnswerParseError("the answer is empty")
    parser = _Parser(tokenize(body))
    value = parser.top_level()
    if parser.i != len(parser.tokens):
        raise AnswerParseError(f"unexpected {parser.tokens[parser.i][1]!r} after a complete answer")
    for item in _items(value):
        if not isinstance(item, sympy.Basic):
            raise AnswerParseError("nested tuples are not supported")
        if item.has(sympy.zoo, sympy.nan):
            raise AnswerParseError("the answer is undefined (division by zero?)")
    return value, percent


def _items(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, (tuple, frozenset)) else (value,)


# -- equivalence ------------------------------------------------------------------------------


def _close(a: sympy.Expr, b: sympy.Expr, rel_tol: float, abs_tol: float) -> bool:
    """Tolerance test on sympy numbers (arbitrary exponent range: 10^5000 does not overflow)."""
    difference = abs(sympy.expand_complex(a - b))
    if a == 0 or b == 0:  # abs_tol only next to zero: 1/2004! is not 1/2006!, however small both are
        return bool(difference <= sympy.Float(abs_tol))
    return bool(difference <= rel_tol * max(abs(a), abs(b)))


def _numeric(expr: sympy.Expr, subs: dict[sympy.Symbol, sympy.Float]) -> sympy.Expr | None:
    """``expr`` evaluated to EVAL_DIGITS digits at ``subs``; None if that is not a finite number."""
    value = expr.evalf(EVAL_DIGITS, subs=subs) if subs else expr.evalf(EVAL_DIGITS)
    if not value.is_number or value.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        return None
    real, imaginary = value.as_real_imag()
    if not (real.is_Float or real.is_zero) or not (imaginary.is_Float or imaginary.is_zero):
        return None  # evalf could not reduce it to numbers
    return real + sympy.I * imaginary if imaginary else real


def _scalars_equal(a: sympy.Expr, b: sympy.Expr, rel_tol: float, abs_tol: float) -> str | None:
    """``"exact"`` or ``"numeric"`` if ``a`` equals ``b``, else None (see the module docstring)."""
    if a.is_Rational and b.is_Rational:
        exact = numbers_match(
            Fraction(int(a.p), int(a.q)), False, Fraction(int(b.p), int(b.q)), False, rel_tol, abs_tol
        )
        return "exact" if exact else None
    if a == b:
        return "exact"
    difference = a - b
    if difference == 0:
        return "exact"
    if a.is_infinite or b.is_infinite:
        return None
    symbols = sorted(difference.free_symbols, key=lambda s: s.name)
    if (a.free_symbols or b.free_symbols) and not symbols:
        # The symbols cancelled and a nonzero constant is left ((x+1)^100 vs (x+1)^100 + 1):
        # a tolerance would call that equal once the values are huge, but it never is.
        return None
    points = [{s: sympy.Float(p + 0.1 * j, EVAL_DIGITS) for j, s in enumerate(symbols)} for p in TEST_POINTS]
    if not symbols:
        points = [{}]
    # Numbers first: they refute a wrong answer in microseconds, where simplify takes tens of ms.
    for subs in points:
        value_a, value_b = _numeric(a, subs), _numeric(b, subs)
        if value_a is None or value_b is None:
            break  # not evaluable here (e.g. a branch point): only simplify can decide
        if not _close(value_a, value_b, rel_tol, abs_tol):
            return None
    else:
        if sympy.expand(difference) == 0 or sympy.simplify(difference) == 0:
            return "exact"
        return "numeric"
    return "exact" if sympy.simplify(difference) == 0 else None


def _unordered(answer: Any, reference: Any) -> bool:
    """Sets are unordered; a bare list is too, unless the other side is an ordered tuple."""
    if isinstance(reference, frozenset) or isinstance(answer, frozenset):
        return True
    kinds = {type(answer), type(reference)}
    return SolutionList in kinds and tuple not in kinds


def _values_equal(answer: Any, reference: Any, rel_tol: float, abs_tol: float) -> str | None:
    if _unordered(answer, reference):
        a_items, r_items = list(_items(answer)), list(_items(reference))
        if len(a_items) != len(r_items):
            return None
        methods = []
        for r in r_items:  # unordered: each reference element matches a distinct answer element
            for k, a in enumerate(a_items):
                method = _scalars_equal(a, r, rel_tol, abs_tol)
                if method:
                    methods.append(method)
                    del a_items[k]
                    break
            else:
                return None
        return "numeric" if "numeric" in methods else "exact"
    if isinstance(reference, tuple) or isinstance(answer, tuple):
        if not (isinstance(reference, tuple) and isinstance(answer, tuple)) or len(answer) != len(reference):
            return None
        pairs = [_scalars_equal(a, r, rel_tol, abs_tol) for a, r in zip(answer, reference, strict=True)]
        if not all(pairs):
            return None
        methods = [m for m in pairs if m]
        return "numeric" if "numeric" in methods else "exact"
    return _scalars_equal(answer, reference, rel_tol, abs_tol)


def compare_values(answer: Any, reference: Any, rel_tol: float, abs_tol: float) -> str | None:
    """``"exact"`` or ``"numeric"`` if two parsed values (expressions, tuples, sets) are equal, else None."""
    return _values_equal(answer, reference, rel_tol, abs_tol)


def compare_answers(answer: str, reference: str, rel_tol: float, abs_tol: float) -> tuple[str, str | None, str]:
    """Compare two answer texts; the worker's whole job for one pair.

    :returns: ``(reason, parsed, detail)``: reason is ``correct | wrong | parse_failed | error``
        (``error`` when the *reference* cannot be parsed); ``parsed`` is sympy's rendering of
        the answer (None if unparseable); ``detail`` is the method (``exact | numeric``) for a
        verdict, or a one-sentence message for a failure.
    """
    from grpo_envs.verify.math_structured import compare_structured  # it imports this module

    try:
        reference_value, reference_percent = parse_answer(reference)
    except (AnswerParseError, RecursionError, ValueError, TypeError, ZeroDivisionError):
        return compare_structured(answer, reference, rel_tol, abs_tol)
    try:
        answer_value, answer_percent = parse_answer(answer)
    except AnswerParseError as exc:
        if exc.args and "too large" in str(exc.args[0]):
            return PARSE_FAILED, None, str(exc)  # a guard refused it: no second parser gets a go
        return compare_structured(answer, reference, rel_tol, abs_tol)
    except RecursionError:
        return PARSE_FAILED, None, "the answer is nested too deeply to parse"
    except Exception as exc:  # noqa: BLE001 - fail closed on anything sympy raises
        return PARSE_FAILED, None, f"the answer could not be parsed ({type(exc).__name__})"
    parsed = _render(answer_value)
    candidates = [(answer_value, reference_value)]
    if answer_percent and not reference_percent and not isinstance(answer_value, (tuple, frozenset)):
        candidates.append((answer_value / 100, reference_value))
    elif reference_percent and not answer_percent and not isinstance(reference_value, (tuple, frozenset)):
        candidates.append((answer_value, reference_value / 100))
    try:
        for a, r in candidates:
            method = _values_equal(a, r, rel_tol, abs_tol)
            if method:
                return CORRECT, parsed, method
    except RecursionError:
        return PARSE_FAILED, parsed, "the answer is nested too deeply to compare"
    except Exception as exc:  # noqa: BLE001 - sympy can raise almost anything on odd input; fail closed
        return PARSE_FAILED, parsed, f"the answer could not be compared ({type(exc).__name__})"
    return WRONG, parsed, "exact" if all(_is_exact_number(v) for v in (answer_value, reference_value)) else "numeric"


def _render(value: Any) -> str:
    """A short text form of a parsed answer (huge integers are summarised, not printed)."""
    try:
        text = str(value)
    except ValueError:  # Python refuses to print integers of more than 4300 digits
        return "<a number too long to print>"
    return text if len(text) <= 200 else text[:197] + "..."


def _is_exact_number(value: Any) -> bool:
    return all(isinstance(item, sympy.Basic) and item.is_Rational for item in _items(value))
