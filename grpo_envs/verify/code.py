"""Pure helpers of the code verifier: extract code, build the sandbox job, read the verdict.

Nothing here executes code; :class:`~grpo_envs.envs.code.CodeEnv` runs the job in the
sandbox between :func:`build_job` and :func:`to_verify_result`.

Reasons (``info["reason"]``):

============== ==========================================================================
correct        every test passed
wrong          the program ran; at least one test failed (a wrong value or output)
runtime_error  the program ran; the failing tests raised inside the program
syntax_error   the program does not compile
exited         the program's process exited (``sys.exit``, ``os._exit``) before the tests ran
timeout        the wall-clock (or CPU) limit was hit
memory         the program ran out of its memory limit
killed         the program's process was killed by a signal (e.g. its output exceeded the
               size limit: SIGXFSZ)
error          the sandbox or the task's tests failed (not the program's doing)
parse_failed   the completion holds no code at all
============== ==========================================================================
"""

from __future__ import annotations

import ast
import re
from typing import Any

from grpo_envs.sandbox import result as sandbox
from grpo_envs.sandbox.job import SandboxJob
from grpo_envs.tasks.code import CodeReference
from grpo_envs.verify.result import CORRECT, ERROR, TIMEOUT, WRONG, VerifyResult

SYNTAX_ERROR = "syntax_error"
RUNTIME_ERROR = "runtime_error"
EXITED = "exited"
MEMORY = "memory"
KILLED = "killed"

#: ``reward_mode`` values: all tests must pass for 1.0, or the fraction of tests passed.
REWARD_MODES = ("all", "fraction")

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_PYTHON_TAGS = {"python", "py", "python3", "py3", ""}


def extract_code(completion: str, entry_point: str | None = None) -> str | None:
    """The code inside a completion's fenced block, or None when there is no fence.

    Python-tagged (or untagged) fences count; an unterminated last fence (a generation cut
    off by the length limit) runs to the end. With several blocks, the last one that
    defines ``entry_point`` wins, else the last block.
    """
    blocks = [body for tag, body in _FENCE.findall(completion) if tag.lower() in _PYTHON_TAGS]
    if not blocks:
        return None
    if entry_point:
        defining = [b for b in blocks if _defines(b, entry_point)]
        if defining:
            return defining[-1]
    return blocks[-1]


def _defines(code: str, name: str) -> bool:
    try:
        module = ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name for n in module.body)


def build_program(reference: CodeReference, completion: str) -> tuple[str, str] | None:
    """The program to run for ``completion``, and the code read from it (for ``info``).

    - fenced code, or unfenced text that parses and defines the entry point, is a full
      solution: it runs after the task's prefix (whose stub it replaces);
    - otherwise the text continues the prefix (HumanEval style: the function's body).

    Returns None when the completion holds no code (empty or only whitespace).
    """
    fenced = extract_code(completion, reference.entry_point)
    code = fenced if fenced is not None else completion
    if not code.strip():
        return None
    if not reference.prefix:
        return code, code
    if fenced is not None or (reference.entry_point and _defines(code, reference.entry_point)):
        return reference.prefix.rstrip("\n") + "\n\n" + code, code
    return reference.prefix + code, code


def build_job(
    reference: CodeReference, completion: str, *, timeout: float, reward_mode: str = "all"
) -> tuple[SandboxJob, str] | None:
    """The sandbox job that scores ``completion`` (None: no code, see :func:`build_program`).

    In ``"all"`` mode the job stops at the first failing test: the reward is 0 either way.
    """
    if reward_mode not in REWARD_MODES:
        raise ValueError(f"reward_mode must be one of {REWARD_MODES}, got {reward_mode!r}")
    built = build_program(reference, completion)
    if built is None:
        return None
    program, code = built
    return SandboxJob(program, reference.tests, timeout=timeout, stop_on_failure=reward_mode == "all"), code


_STATUS_REASON = {
    sandbox.TIMEOUT: TIMEOUT,
    sandbox.MEMORY: MEMORY,
    sandbox.KILLED: KILLED,
    sandbox.ERROR: ERROR,
}


def to_verify_result(result: sandbox.SandboxResult, *, reward_mode: str = "all", parsed: Any = None) -> VerifyResult:
    """Turn a sandbox result into the env's verdict.

    Reward is 1.0 only when the job ran to completion (status ``ok``) and every test passed;
    in ``"fraction"`` mode it is ``passed / total``, counting only tests the harness saw pass
    (so a later crash or timeout keeps the credit of the tests before it).
    """
    total = len(result.tests)
    passed = result.num_passed
    details = {
        "tests_passed": passed,
        "tests_total": total,
        "status": result.status,
        "message": result.message,
        "test_outcomes": [t.status for t in result.tests],
        "stdout": result.stdout[:1000],
        "stderr": result.stderr[-1000:],
    }
    correct = result.status == sandbox.OK and total > 0 and passed == total
    if correct:
        reason = CORRECT
    elif result.status == sandbox.OK:
        failing = [t for t in result.tests if t.status not in (sandbox.PASSED, sandbox.NOT_RUN)]
        reason = RUNTIME_ERROR if failing and all(t.status == sandbox.TEST_ERROR for t in failing) else WRONG
    elif result.status == sandbox.FAILED:
        if result.error_type in ("SyntaxError", "IndentationError", "TabError"):
            reason = SYNTAX_ERROR
        elif result.error_type in ("SystemExit", "ProcessExit"):
            reason = EXITED
        else:
            reason = RUNTIME_ERROR
    else:
        reason = _STATUS_REASON.get(result.status, ERROR)
    if correct:
        reward = 1.0
    elif reward_mode == "fraction" and total:
        reward = passed / total
    else:
        reward = 0.0
    return VerifyResult(reward=reward, correct=correct, reason=reason, parsed=parsed, details=details)


__all__ = [
    "EXITED",
    "KILLED",
    "MEMORY",
    "REWARD_MODES",
    "RUNTIME_ERROR",
    "SYNTAX_ERROR",
    "build_job",
    "build_program",
    "extract_code",
    "to_verify_result",
]
