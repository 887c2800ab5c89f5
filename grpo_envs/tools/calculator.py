"""calculate: arithmetic on untrusted text, parsed with ``ast`` against a whitelist.

Never ``eval``: the expression is parsed into an AST and walked node by node; only number
literals, ``+ - * / // % **``, unary signs, the constants below and the functions below are
allowed (no names, attributes, subscripts, comprehensions or keyword arguments). Every
operation whose cost grows with its operands is bounded *before* it runs: ``10**10**10`` is
refused at once, not computed. The env also runs this tool in a killable worker process.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable

from grpo_envs.tools.base import Tool, ToolError

#: Longest expression accepted, in characters (Python's parser also caps nesting at 200).
MAX_EXPRESSION_CHARS = 500
#: Most AST nodes in one expression.
MAX_NODES = 300
#: Largest integer result, in bits (about 1 200 decimal digits): big-int multiplication and
#: power cost grows with operand size, so exact integers stay below this bound.
MAX_INT_BITS = 4_096
#: Largest argument of factorial (300! has 2 041 bits, within MAX_INT_BITS).
MAX_FACTORIAL = 300
#: Largest ``ndigits`` of round().
MAX_ROUND_DIGITS = 15

Number = int | float


def _check_int(value: Number) -> Number:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ToolError(f"result has more than {MAX_INT_BITS} bits; use smaller numbers")
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolError("result is not a finite number (overflow)")
    return value


def _power(base: Number, exponent: Number) -> Number:
    if isinstance(base, int) and isinstance(exponent, int) and exponent >= 0:
        # |base|**exponent has about exponent * log2|base| bits: refuse before computing it.
        if abs(base) > 1 and exponent * (abs(base).bit_length() - 1) > MAX_INT_BITS:
            raise ToolError(f"{base} ** {exponent} is too large (more than {MAX_INT_BITS} bits)")
        return base**exponent
    try:
        result = math.pow(float(base), float(exponent))
    except OverflowError:
        raise ToolError(f"{base} ** {exponent} overflows") from None
    except ValueError:
        raise ToolError(f"{base} ** {exponent} is not a real number") from None
    return result


def _multiply(a: Number, b: Number) -> Number:
    if isinstance(a, int) and isinstance(b, int) and a.bit_length() + b.bit_length() > MAX_INT_BITS + 1:
        raise ToolError(f"product has more than {MAX_INT_BITS} bits; use smaller numbers")
    return a * b


def _divide(a: Number, b: Number) -> Number:
    if b == 0:
        raise ToolError("division by zero")
    if isinstance(a, int) and isinstance(b, int) and a % b == 0:
        return a // b  # keep exact integers exact: 6 / 3 is 2, not 2.0
    return a / b


def _floordiv(a: Number, b: Number) -> Number:
    if b == 0:
        raise ToolError("division by zero")
    return a // b


def _mod(a: Number, b: Number) -> Number:
    if b == 0:
        raise ToolError("modulo by zero")
    return a % b


_BINARY: dict[type, Callable[[Number, Number], Number]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: _multiply,
    ast.Div: _divide,
    ast.FloorDiv: _floordiv,
    ast.Mod: _mod,
    ast.Pow: _power,
}


def _round(x: Number, ndigits: Number = 0) -> Number:
    if not isinstance(ndigits, int) or abs(ndigits) > MAX_ROUND_DIGITS:
        raise ToolError(f"round's digits must be an integer between -{MAX_ROUND_DIGITS} and {MAX_ROUND_DIGITS}")
    return round(x, ndigits) if ndigits else round(x)


def _factorial(n: Number) -> int:
    if not isinstance(n, int) or not 0 <= n <= MAX_FACTORIAL:
        raise ToolError(f"factorial needs an integer between 0 and {MAX_FACTORIAL}")
    return math.factorial(n)


def _real(function: Callable[..., float]) -> Callable[..., float]:
    def wrapped(*args: Number) -> float:
        try:
            return function(*(float(a) for a in args))
        except (ValueError, ZeroDivisionError):
            raise ToolError(f"{function.__name__}({', '.join(map(str, args))}) is undefined") from None
        except OverflowError:
            raise ToolError(f"{function.__name__}({', '.join(map(str, args))}) overflows") from None

    wrapped.__name__ = function.__name__
    return wrapped


#: name -> (function, min args, max args)
FUNCTIONS: dict[str, tuple[Callable[..., Number], int, int]] = {
    "abs": (abs, 1, 1),
    "round": (_round, 1, 2),
    "min": (min, 1, 20),
    "max": (max, 1, 20),
    "sqrt": (_real(math.sqrt), 1, 1),
    "exp": (_real(math.exp), 1, 1),
    "log": (_real(math.log), 1, 2),
    "log10": (_real(math.log10), 1, 1),
    "log2": (_real(math.log2), 1, 1),
    "sin": (_real(math.sin), 1, 1),
    "cos": (_real(math.cos), 1, 1),
    "tan": (_real(math.tan), 1, 1),
    "asin": (_real(math.asin), 1, 1),
    "acos": (_real(math.acos), 1, 1),
    "atan": (_real(math.atan), 1, 1),
    "degrees": (_real(math.degrees), 1, 1),
    "radians": (_real(math.radians), 1, 1),
    "floor": (lambda x: math.floor(x), 1, 1),
    "ceil": (lambda x: math.ceil(x), 1, 1),
    "factorial": (_factorial, 1, 1),
}
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}


def _evaluate(node: ast.AST) -> Number:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ToolError(f"only numbers are allowed, got {node.value!r}")
        return _check_int(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        value = _evaluate(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        try:
            return _check_int(_BINARY[type(node.op)](left, right))
        except OverflowError:
            raise ToolError("result overflows") from None
    if isinstance(node, ast.Name):
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        raise ToolError(f"unknown name {node.id!r}; allowed constants: {sorted(CONSTANTS)}")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise ToolError(f"unknown function; allowed: {sorted(FUNCTIONS)}")
        if node.keywords:
            raise ToolError("keyword arguments are not allowed")
        function, low, high = FUNCTIONS[node.func.id]
        if not low <= len(node.args) <= high:
            raise ToolError(f"{node.func.id} takes {low} to {high} arguments, got {len(node.args)}")
        return _check_int(function(*(_evaluate(arg) for arg in node.args)))
    raise ToolError(f"{type(node).__name__} is not allowed; use numbers, + - * / // % **, and functions like sqrt()")


def calculate(expression: str) -> Number:
    """Evaluate an arithmetic expression such as ``"3 * (4 + 5) / 2"`` or ``"sqrt(2) ** 2"``.

    ``^`` is read as power (as people write it). Integers stay exact; ``/`` of integers gives
    an integer when the division is exact.

    :raises ToolError: the expression is too long, uses something outside the whitelist, or
        its result would be too large.
    """
    if not isinstance(expression, str):
        raise ToolError("expression must be a string")
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ToolError(f"expression has {len(expression)} characters; the limit is {MAX_EXPRESSION_CHARS}")
    try:
        tree = ast.parse(expression.replace("^", "**").strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise ToolError(f"cannot parse the expression: {type(exc).__name__}") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise ToolError(f"expression has more than {MAX_NODES} parts; split it into smaller calls")
    try:
        return _evaluate(tree)
    except RecursionError:
        raise ToolError("expression nests too deeply") from None


CALCULATOR = Tool(
    name="calculate",
    description="Evaluate an arithmetic expression (numbers, + - * / // % ** and functions such as sqrt, "
    "log, sin, round, factorial; constants pi and e) and return the result.",
    parameters={
        "type": "object",
        "properties": {
            "expression": {
                "type": "string",
                "description": 'The expression, e.g. "3 * (4 + 5) / 2".',
                "maxLength": MAX_EXPRESSION_CHARS,
            },
        },
        "required": ["expression"],
    },
    function=calculate,
    isolated=True,
)

__all__ = ["CALCULATOR", "calculate"]
