"""A small in-memory key-value store, one per episode, and the tools that use it.

The store is a bounded ``dict``: keys are strings, values are strings, numbers or booleans.
It never touches the file system: a key such as ``"../etc/passwd"`` is just a string.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from grpo_envs.tools.base import Tool, ToolError

#: Bounds that keep a store small whatever a policy writes into it.
MAX_KEYS = 256
MAX_KEY_CHARS = 128
MAX_VALUE_CHARS = 4_096
#: Most keys one ``kv_list`` returns.
MAX_LISTED = 100

Value = str | int | float | bool


class KeyValueStore:
    """A bounded in-memory key-value store.

    :param initial: the starting contents (copied).
    :param max_keys: most keys the store may hold.
    """

    def __init__(self, initial: Mapping[str, Value] | None = None, *, max_keys: int = MAX_KEYS) -> None:
        self.max_keys = max_keys
        self._data: dict[str, Value] = {}
        for key, value in (initial or {}).items():
            self.set(key, value)

    def __len__(self) -> int:
        return len(self._data)

    def snapshot(self) -> dict[str, Value]:
        """A copy of the contents."""
        return dict(self._data)

    def get(self, key: str) -> Value:
        if key not in self._data:
            raise ToolError(f"no key {key!r} in the store; call kv_list to see the keys")
        return self._data[key]

    def set(self, key: str, value: Value) -> None:
        if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_CHARS:
            raise ToolError(f"a key must be a non-empty string of at most {MAX_KEY_CHARS} characters")
        if not isinstance(value, (str, int, float, bool)):
            raise ToolError("a value must be a string, a number or a boolean")
        if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
            raise ToolError(f"a value may have at most {MAX_VALUE_CHARS} characters")
        if key not in self._data and len(self._data) >= self.max_keys:
            raise ToolError(f"the store is full ({self.max_keys} keys); delete a key first")
        self._data[key] = value

    def delete(self, key: str) -> None:
        if key not in self._data:
            raise ToolError(f"no key {key!r} in the store")
        del self._data[key]

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(k for k in self._data if k.startswith(prefix))


def _require(store: Any) -> KeyValueStore:
    if not isinstance(store, KeyValueStore):
        raise ToolError("the key-value store is not available in this environment")
    return store


def kv_get(store: KeyValueStore, key: str) -> Value:
    """The value stored under ``key``."""
    return _require(store).get(key)


def kv_set(store: KeyValueStore, key: str, value: Value) -> str:
    """Store ``value`` under ``key`` (replacing any old value)."""
    _require(store).set(key, value)
    return "ok"


def kv_delete(store: KeyValueStore, key: str) -> str:
    """Remove ``key``."""
    _require(store).delete(key)
    return "ok"


def kv_list(store: KeyValueStore, prefix: str = "") -> list[str]:
    """The keys that start with ``prefix`` (all keys by default), sorted, at most MAX_LISTED."""
    return _require(store).keys(prefix)[:MAX_LISTED]


_KEY = {"type": "string", "description": "The key.", "minLength": 1, "maxLength": MAX_KEY_CHARS}

KV_GET = Tool(
    "kv_get",
    "Read the value stored under a key in the key-value store.",
    {"type": "object", "properties": {"key": _KEY}, "required": ["key"]},
    kv_get,
    uses_store=True,
)
KV_SET = Tool(
    "kv_set",
    "Store a value under a key in the key-value store.",
    {
        "type": "object",
        "properties": {
            "key": _KEY,
            "value": {"type": ["string", "number", "boolean"], "description": "The value to store."},
        },
        "required": ["key", "value"],
    },
    kv_set,
    uses_store=True,
)
KV_DELETE = Tool(
    "kv_delete",
    "Delete a key from the key-value store.",
    {"type": "object", "properties": {"key": _KEY}, "required": ["key"]},
    kv_delete,
    uses_store=True,
)
KV_LIST = Tool(
    "kv_list",
    "List the keys in the key-value store, optionally only those with a given prefix.",
    {
        "type": "object",
        "properties": {
            "prefix": {"type": "string", "description": "Only keys starting with this text (default: all keys)."}
        },
        "required": [],
    },
    kv_list,
    uses_store=True,
)
