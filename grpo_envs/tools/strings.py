"""String utilities: length, reversal, case change, counting a substring.

All are linear in their input, and the schema caps the input length, so none can hang.
"""

from __future__ import annotations

from grpo_envs.tools.base import Tool, ToolError

#: Longest text a string tool accepts (enforced by the schema's ``maxLength``).
MAX_TEXT_CHARS = 10_000
CASES = ("upper", "lower", "title")


def text_length(text: str) -> int:
    """Number of characters in ``text``."""
    return len(text)


def reverse_text(text: str) -> str:
    """``text`` with its characters in reverse order."""
    return text[::-1]


def change_case(text: str, case: str) -> str:
    """``text`` in upper, lower or title case."""
    if case not in CASES:
        raise ToolError(f"case must be one of {CASES}")
    return {"upper": text.upper, "lower": text.lower, "title": text.title}[case]()


def count_occurrences(text: str, substring: str, case_sensitive: bool = True) -> int:
    """Non-overlapping occurrences of ``substring`` in ``text``."""
    if not substring:
        raise ToolError("substring must not be empty")
    if not case_sensitive:
        text, substring = text.lower(), substring.lower()
    return text.count(substring)


_TEXT = {"type": "string", "description": "The text.", "maxLength": MAX_TEXT_CHARS}

TEXT_LENGTH = Tool(
    "text_length",
    "Count the characters in a text.",
    {"type": "object", "properties": {"text": _TEXT}, "required": ["text"]},
    text_length,
)
REVERSE_TEXT = Tool(
    "reverse_text",
    "Reverse the characters of a text.",
    {"type": "object", "properties": {"text": _TEXT}, "required": ["text"]},
    reverse_text,
)
CHANGE_CASE = Tool(
    "change_case",
    "Convert a text to upper, lower or title case.",
    {
        "type": "object",
        "properties": {"text": _TEXT, "case": {"type": "string", "enum": list(CASES)}},
        "required": ["text", "case"],
    },
    change_case,
)
COUNT_OCCURRENCES = Tool(
    "count_occurrences",
    "Count the non-overlapping occurrences of a substring in a text.",
    {
        "type": "object",
        "properties": {
            "text": _TEXT,
            "substring": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_CHARS},
            "case_sensitive": {"type": "boolean", "description": "Match case exactly (default true)."},
        },
        "required": ["text", "substring"],
    },
    count_occurrences,
)
