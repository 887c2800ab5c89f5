"""Pure, side-effect-free checkers: each turns (completion, reference) into a VerifyResult."""

from grpo_envs.verify.result import CORRECT, ERROR, PARSE_FAILED, TIMEOUT, WRONG, VerifyResult

__all__ = ["CORRECT", "ERROR", "PARSE_FAILED", "TIMEOUT", "WRONG", "VerifyResult"]
