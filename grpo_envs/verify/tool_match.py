"""Compare function calls with a reference in the format of BFCL's ``possible_answer`` files.

The reference is ``[{"func_name": {"param": [acceptable values]}}]``: ``""`` in a parameter's
list means the parameter may be omitted; parallel calls match in any order; numbers compare
by value (``5 == 5.0``, but ``True != 1``); strings compare after BFCL's normalisation (lower
case, without spaces and ``,./-_*^``) unless the task asks for another mode.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from grpo_envs.verify.result import VerifyResult
from grpo_envs.verify.tool_call_parse import FunctionCall
from grpo_envs.verify.tool_schema import resolve_function

UNEXPECTED_CALL = "unexpected_call"  #: no tool applies, but the completion called one
WRONG_COUNT = "wrong_count"  #: the number of calls differs from the reference
WRONG_FUNCTION = "wrong_function"  #: a valid function, but not the one the reference calls
WRONG_VALUE = "wrong_value"  #: an argument's value is not among the acceptable ones
MISSING_ARGUMENT = "missing_argument"  #: the reference needs an argument the call omitted
UNEXPECTED_ARGUMENT = "unexpected_argument"  #: the call passes an argument the reference has not
#: Bipartite assignment by dynamic programming is exponential in the smaller side; above
#: this many calls, fraction mode falls back to a greedy assignment.
MAX_EXACT_ASSIGNMENT = 12
#: String comparison per parameter: ``bfcl`` (BFCL's normalisation), ``ignore_space``
#: (whitespace removed, case kept: for expressions, where ``*`` vs ``/`` matters), ``exact``.
STRING_MATCH_MODES = ("bfcl", "ignore_space", "exact")
_BFCL_PUNCTUATION_RE = re.compile(r"[ ,./\-_*^]")
_WHITESPACE_RE = re.compile(r"\s+")


def normalise_string(text: str, mode: str = "bfcl") -> str:
    """BFCL's string normalisation (lower case, drop spaces and ``,./-_*^``, ``'`` -> ``"``),
    or whitespace removal only (``ignore_space``), or nothing (``exact``)."""
    if mode == "exact":
        return text
    if mode == "ignore_space":
        return _WHITESPACE_RE.sub("", text)
    return _BFCL_PUNCTUATION_RE.sub("", text).lower().replace("'", '"')


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_possible_answer_dict(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(isinstance(v, list) for v in value.values())


def values_equal(value: Any, expected: Any, mode: str = "bfcl") -> bool:
    """Whether an argument value equals one acceptable value (recursively for lists and dicts)."""
    if isinstance(expected, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(expected, bool) and value == expected
    if _is_number(expected):
        return _is_number(value) and (value == expected or math.isclose(value, expected, rel_tol=1e-9, abs_tol=0.0))
    if isinstance(expected, str):
        return isinstance(value, str) and normalise_string(value, mode) == normalise_string(expected, mode)
    if isinstance(expected, list):
        return (
            isinstance(value, list)
            and len(value) == len(expected)
            and all(values_equal(v, e, mode) for v, e in zip(value, expected))
        )
    if isinstance(expected, dict):
        if not isinstance(value, dict):
            return False
        if _is_possible_answer_dict(expected):  # BFCL: a dict parameter lists acceptable values per key
            return _match_arguments(value, expected, {}, mode)[0]
        return set(value) == set(expected) and all(values_equal(value[k], expected[k], mode) for k in expected)
    return value == expected


def _match_arguments(
    arguments: Mapping[str, Any], possible: Mapping[str, list[Any]], string_match: Mapping[str, str], default_mode: str
) -> tuple[bool, int, int, dict[str, Any] | None]:
    """Compare one call's arguments with one reference call's possible answers.

    :returns: ``(all_ok, n_right, n_total, first_mismatch)``; every argument named by either
        side counts once in ``n_total``.
    """
    names = list(possible) + [name for name in arguments if name not in possible]
    right, first = 0, None
    for name in names:
        acceptable = possible.get(name)
        mode = string_match.get(name, default_mode)
        if acceptable is None:
            problem = {
                "reason": UNEXPECTED_ARGUMENT,
                "argument": name,
                "got": arguments[name],
                "message": f"argument {name!r} is not expected",
            }
        elif name not in arguments:
            if "" in acceptable:
                right += 1
                continue
            problem = {
                "reason": MISSING_ARGUMENT,
                "argument": name,
                "expected": acceptable,
                "message": f"argument {name!r} is missing; expected one of {acceptable!r}",
            }
        elif any(values_equal(arguments[name], option, mode) for option in acceptable):
            right += 1
            continue
        else:
            problem = {
                "reason": WRONG_VALUE,
                "argument": name,
                "got": arguments[name],
                "expected": acceptable,
                "message": f"argument {name!r} = {arguments[name]!r} is not one of {acceptable!r}",
            }
        first = first or problem
    return first is None, right, len(names), first


def _compare(
    call: FunctionCall,
    reference: Mapping[str, Mapping[str, list[Any]]],
    specs_by_name: Mapping[str, Any],
    string_match: Mapping[str, str],
) -> tuple[bool, float, dict[str, Any]]:
    """(full match, fraction of arguments right, first mismatch) of one call vs one reference call."""
    ((ref_name, possible),) = reference.items()
    resolved = resolve_function(call.name, specs_by_name) or call.name
    if resolved != ref_name:
        return (
            False,
            0.0,
            {
                "reason": WRONG_FUNCTION,
                "got": call.name,
                "expected": ref_name,
                "message": f"called {call.name!r}, expected {ref_name!r}",
            },
        )
    ok, right, total, mismatch = _match_arguments(call.arguments, possible, string_match, "bfcl")
    return ok, (right / total if total else 1.0), (mismatch or {})


def _max_matching(adjacent: list[list[bool]]) -> list[int]:
    """Kuhn's augmenting paths: for each reference i, the matched call index or -1."""
    n_calls = len(adjacent[0]) if adjacent else 0
    owner = [-1] * n_calls

    def augment(i: int, seen: list[bool]) -> bool:
        for j in range(n_calls):
            if adjacent[i][j] and not seen[j]:
                seen[j] = True
                if owner[j] == -1 or augment(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    for i in range(len(adjacent)):
        augment(i, [False] * n_calls)
    match = [-1] * len(adjacent)
    for j, i in enumerate(owner):
        if i >= 0:
            match[i] = j
    return match


def _best_assignment_score(scores: list[list[float]]) -> float:
    """Largest sum of scores over one-to-one assignments of references to calls."""
    n_ref, n_calls = len(scores), len(scores[0]) if scores else 0
    if min(n_ref, n_calls) == 0:
        return 0.0
    if n_ref > n_calls:  # DP is exponential in the rows' count: put the smaller side there
        scores = [list(col) for col in zip(*scores)]
        n_ref, n_calls = n_calls, n_ref
    if n_ref > MAX_EXACT_ASSIGNMENT:
        used: set[int] = set()
        total = 0.0
        for row in scores:
            j = max((j for j in range(n_calls) if j not in used), key=lambda j: row[j])
            used.add(j)
            total += row[j]
        return total
    best = {0: 0.0}  # mask of used rows -> best total after the columns seen so far
    for j in range(n_calls):
        nxt = dict(best)
        for mask, total in best.items():
            for i in range(n_ref):
                if not mask & (1 << i):
                    key = mask | (1 << i)
                    nxt[key] = max(nxt.get(key, -1.0), total + scores[i][j])
        best = nxt
    return max(best.values())


def match_calls(
    calls: Sequence[FunctionCall],
    reference: Sequence[Mapping[str, Mapping[str, list[Any]]]],
    specs_by_name: Mapping[str, Any],
    *,
    reward_mode: str = "binary",
    string_match: Mapping[str, str] | None = None,
) -> VerifyResult:
    """Match schema-valid calls against BFCL possible answers, in any order.

    :param calls: the parsed calls (at least one).
    :param reference: one ``{"func_name": {"param": [acceptable values]}}`` per expected call.
    :param specs_by_name: the specs, to resolve dotted names sent with underscores.
    :param reward_mode: ``"binary"`` (1.0 only for a full match) or ``"fraction"``: the best
        one-to-one assignment's share of right arguments, divided by ``max(#calls, #reference)``.
    :param string_match: per-parameter string comparison (see :data:`STRING_MATCH_MODES`).
    """
    string_match = dict(string_match or {})
    parsed = [c.to_dict() for c in calls]
    compared = [[_compare(c, ref, specs_by_name, string_match) for c in calls] for ref in reference]
    matching = _max_matching([[cell[0] for cell in row] for row in compared])
    n_matched = sum(j >= 0 for j in matching)
    counts = {"num_calls": len(calls), "expected_calls": len(reference), "matched_calls": n_matched}
    if n_matched == len(reference) == len(calls):
        return VerifyResult.success(parsed=parsed, **counts)

    # Explain the first unmatched reference call against the closest unused call.
    used = {j for j in matching if j >= 0}
    mismatch: dict[str, Any] = {}
    for i, j in enumerate(matching):
        if j >= 0:
            continue
        candidates = [k for k in range(len(calls)) if k not in used] or list(range(len(calls)))
        k = max(candidates, key=lambda k: (compared[i][k][1] + (compared[i][k][2].get("reason") != WRONG_FUNCTION), -k))
        mismatch = {"reference_index": i, "call_index": k, "function": calls[k].name, **compared[i][k][2]}
        break
    if not mismatch:  # every reference call matched: the surplus calls are the problem
        k = min(j for j in range(len(calls)) if j not in used)
        mismatch = {
            "call_index": k,
            "function": calls[k].name,
            "reason": UNEXPECTED_CALL,
            "message": f"call {k} ({calls[k].name}) is not in the reference",
        }
    if len(calls) != len(reference):
        reason = WRONG_COUNT
        message = f"made {len(calls)} call(s), expected {len(reference)}"
        if mismatch:
            message += f"; {mismatch['message']}"
    else:
        reason = mismatch["reason"]
        message = f"call {mismatch['call_index']} ({mismatch['function']}): {mismatch['message']}"
    mismatch.pop("message", None)
    reward = 0.0
    if reward_mode == "fraction":
        scores = [[cell[1] for cell in row] for row in compared]
        reward = _best_assignment_score(scores) / max(len(calls), len(reference))
    return VerifyResult(
        reward=reward,
        correct=False,
        reason=reason,
        parsed=parsed,
        details={**counts, "mismatch": mismatch, "message": message},
    )
