"""Plain-data values across the trust boundary, with type-exact encoding.

The candidate's return values travel to the trusted harness as JSON with type tags. Only
exact built-in types are encoded (``type(x) is int``, never a subclass), so an object whose
``__eq__`` always answers True, an ``int`` subclass with a forged ``__eq__``, or a proxy
that pretends to be a list arrives as an :class:`Opaque` value that equals nothing. Decoding
never executes code (unlike pickle or marshal, which must never see untrusted bytes).
"""

from __future__ import annotations

import json
from typing import Any

#: Deepest nesting the codec accepts: well beyond any test value, and far below the
#: interpreter's recursion limit so that decoding cannot blow the harness's stack.
MAX_DEPTH = 200


class CodecError(ValueError):
    """The bytes are not a well-formed encoded value (a broken or forged message)."""


class Opaque:
    """A value the candidate returned that is not plain data. It equals nothing, not even
    another opaque value, so every comparison in a test fails.

    :param type_name: the class name the candidate's object reported.
    """

    __slots__ = ("type_name",)

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def __eq__(self, other: object) -> bool:
        return False

    def __ne__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"<opaque {self.type_name} object>"


_SCALARS = (type(None), bool, int, float, str)
_TAGS: dict[type, str] = {list: "L", tuple: "T", set: "S", frozenset: "F"}


def _to_json(value: Any, depth: int) -> Any:
    kind = type(value)
    if kind in _SCALARS:
        return value
    if depth > MAX_DEPTH:
        raise CodecError(f"value is nested deeper than {MAX_DEPTH} levels")
    tag = _TAGS.get(kind)
    if tag is not None:
        return [tag, *[_to_json(item, depth + 1) for item in value]]
    if kind is dict:
        return ["D", *[[_to_json(k, depth + 1), _to_json(v, depth + 1)] for k, v in value.items()]]
    if kind is bytes:
        return ["B", value.hex()]
    if kind is complex:
        return ["C", value.real, value.imag]
    name = getattr(kind, "__name__", "object")
    return ["O", name if type(name) is str else "object"]


#: What a value that cannot be encoded at all becomes.
UNENCODABLE = ["O", "unencodable"]


def to_tree(value: Any) -> Any:
    """The JSON-ready tagged tree of a value; anything that is not plain data becomes an
    opaque marker. (An int too long for ``json.dumps`` still fails there: the sender
    replaces such a reply with :data:`UNENCODABLE`.)"""
    try:
        return _to_json(value, 0)
    except (CodecError, RecursionError):
        return UNENCODABLE


def encode(value: Any) -> bytes:
    """Encode a value as UTF-8 JSON bytes (see :func:`to_tree`)."""
    try:
        text = json.dumps(to_tree(value), ensure_ascii=False, separators=(",", ":"))
    except (ValueError, RecursionError):
        text = json.dumps(UNENCODABLE)
    return text.encode("utf-8", "surrogatepass")


def _from_json(data: Any, depth: int) -> Any:
    kind = type(data)
    if kind in _SCALARS:
        return data
    if kind is not list or not data or type(data[0]) is not str or depth > MAX_DEPTH:
        raise CodecError("malformed value")
    tag, items = data[0], data[1:]
    if tag == "L":
        return [_from_json(item, depth + 1) for item in items]
    if tag == "T":
        return tuple(_from_json(item, depth + 1) for item in items)
    try:
        if tag == "S":
            return {_from_json(item, depth + 1) for item in items}
        if tag == "F":
            return frozenset(_from_json(item, depth + 1) for item in items)
        if tag == "D":
            out = {}
            for pair in items:
                if type(pair) is not list or len(pair) != 2:
                    raise CodecError("malformed dict item")
                out[_from_json(pair[0], depth + 1)] = _from_json(pair[1], depth + 1)
            return out
    except TypeError as exc:  # an unhashable key or member: forged
        raise CodecError(str(exc)) from None
    if tag == "B" and len(items) == 1 and type(items[0]) is str:
        try:
            return bytes.fromhex(items[0])
        except ValueError:
            raise CodecError("malformed bytes") from None
    if tag == "C" and len(items) == 2 and all(type(x) in (int, float) for x in items):
        return complex(items[0], items[1])
    if tag == "O" and len(items) == 1 and type(items[0]) is str:
        return Opaque(items[0][:100])
    raise CodecError(f"unknown tag {tag[:20]!r}")


def from_tree(tree: Any) -> Any:
    """Rebuild a value from its tagged tree.

    :raises CodecError: the tree is malformed (a forged or truncated message).
    """
    try:
        return _from_json(tree, 0)
    except RecursionError:
        raise CodecError("value nested too deeply") from None


def decode(payload: bytes) -> Any:
    """Decode a value produced by :func:`encode`.

    :raises CodecError: the payload is malformed (a forged or truncated message).
    """
    try:
        data = json.loads(payload.decode("utf-8", "surrogatepass"))
    except (ValueError, RecursionError) as exc:
        raise CodecError(f"not valid JSON: {exc}") from None
    return from_tree(data)
