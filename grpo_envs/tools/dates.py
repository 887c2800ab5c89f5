"""Date arithmetic on ISO dates (``YYYY-MM-DD``): add days, count days, name the weekday."""

from __future__ import annotations

import datetime as dt

from grpo_envs.tools.base import Tool, ToolError

#: Largest day offset accepted (about 2 700 years): ``datetime`` overflows past year 9999.
MAX_DAYS = 1_000_000


def parse_date(text: str) -> dt.date:
    """Read an ISO date ``YYYY-MM-DD``.

    :raises ToolError: the text is not such a date.
    """
    if not isinstance(text, str) or len(text.strip()) != 10:
        raise ToolError(f"{text!r} is not a date; write dates as YYYY-MM-DD, e.g. 2024-03-05")
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise ToolError(f"{text!r} is not a valid date; write dates as YYYY-MM-DD, e.g. 2024-03-05") from None


def date_add(date: str, days: int) -> str:
    """The date ``days`` days after ``date`` (before it when negative), as ``YYYY-MM-DD``."""
    start = parse_date(date)
    if abs(days) > MAX_DAYS:
        raise ToolError(f"days must be between -{MAX_DAYS} and {MAX_DAYS}")
    try:
        return (start + dt.timedelta(days=int(days))).isoformat()
    except OverflowError:
        raise ToolError("the resulting date is outside years 1-9999") from None


def date_diff(start: str, end: str) -> int:
    """Days from ``start`` to ``end`` (negative when ``end`` comes first)."""
    return (parse_date(end) - parse_date(start)).days


def day_of_week(date: str) -> str:
    """The English weekday name of ``date``, e.g. ``"Monday"``."""
    return parse_date(date).strftime("%A")


_DATE = {"type": "string", "description": "A date as YYYY-MM-DD."}

DATE_ADD = Tool(
    name="date_add",
    description="Add a number of days (negative to subtract) to a date and return the new date (YYYY-MM-DD).",
    parameters={
        "type": "object",
        "properties": {
            "date": _DATE,
            "days": {"type": "integer", "description": "Days to add; negative goes back in time."},
        },
        "required": ["date", "days"],
    },
    function=date_add,
)
DATE_DIFF = Tool(
    name="date_diff",
    description="Count the days from a start date to an end date (negative if the end is earlier).",
    parameters={"type": "object", "properties": {"start": _DATE, "end": _DATE}, "required": ["start", "end"]},
    function=date_diff,
)
DAY_OF_WEEK = Tool(
    name="day_of_week",
    description="Return the weekday name (Monday to Sunday) of a date.",
    parameters={"type": "object", "properties": {"date": _DATE}, "required": ["date"]},
    function=day_of_week,
)
