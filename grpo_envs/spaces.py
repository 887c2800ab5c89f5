"""Text spaces for language-model environments.

Gymnasium's :class:`~gymnasium.spaces.Text` defaults to ``[A-Za-z0-9]``: a prompt such as
"What is 3/4 + 1/8?" would not even be a member of its own observation space. A language
model can emit any Unicode character, so membership here is any ``str`` within the length
bounds, while :meth:`sample` draws from a broad, printable charset.
"""

from __future__ import annotations

import string
from typing import Any

import numpy as np
from gymnasium.spaces import Text


def _ranges(*spans: tuple[int, int]) -> str:
    return "".join(chr(c) for lo, hi in spans for c in range(lo, hi + 1))


#: What :meth:`UnicodeText.sample` draws from: printable ASCII with whitespace, Latin,
#: Greek, Cyrillic, general punctuation, currency, arrows and mathematical operators.
BROAD_CHARSET: str = string.printable + _ranges(
    (0x00A1, 0x024F),  # Latin-1 supplement, Latin extended A/B
    (0x0391, 0x03C9),  # Greek
    (0x0410, 0x044F),  # Cyrillic
    (0x2010, 0x2027),  # dashes, quotes, bullets
    (0x20A0, 0x20BF),  # currency
    (0x2190, 0x21FF),  # arrows
    (0x2200, 0x22FF),  # mathematical operators
)


class UnicodeText(Text):
    """A :class:`~gymnasium.spaces.Text` space whose members are all strings of bounded length.

    :param max_length: the longest member, in characters.
    :param min_length: the shortest member (0 for actions: an empty completion is valid).
    :param charset: what :meth:`sample` draws from; membership does not depend on it.
    :param seed: seed for :meth:`sample`.
    """

    def __init__(
        self,
        max_length: int,
        *,
        min_length: int = 0,
        charset: str = BROAD_CHARSET,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__(max_length=max_length, min_length=min_length, charset=charset, seed=seed)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length

    def __repr__(self) -> str:
        return f"UnicodeText({self.min_length}, {self.max_length})"

    def __eq__(self, other: Any) -> bool:
        return (
            isinstance(other, UnicodeText)
            and self.min_length == other.min_length
            and self.max_length == other.max_length
        )
