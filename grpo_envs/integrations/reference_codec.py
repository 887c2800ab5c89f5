"""Task references as JSON text and back, without loss, for trainers that carry the ground truth
in a data file (verl's parquet ``reward_model.ground_truth``).

Plain JSON would lose what the verifiers rely on: tuples come back as lists and a code task's
:class:`~grpo_envs.tasks.code.CodeReference` as a dict. Both are written tagged
(``{"__tuple__": [...]}``, ``{"__dataclass__": "module:Name", "fields": {...}}``) and rebuilt on
reading. Only dataclasses defined in ``grpo_envs`` are rebuilt: a data file must not be able to
make the reader construct arbitrary classes.

Example::

    >>> from grpo_envs.sandbox import IOTests
    >>> text = dumps_reference({"cases": IOTests(cases=(("1\\n", "2"),)), "tolerance": 0.5})
    >>> loads_reference(text)
    {'cases': IOTests(cases=(('1\\n', '2'),), compare='tokens'), 'tolerance': 0.5}
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Mapping
from typing import Any

_TUPLE = "__tuple__"
_DATACLASS = "__dataclass__"
#: The only package whose dataclasses a reference may name.
_TRUSTED_PREFIX = "grpo_envs."


def dumps_reference(value: Any) -> str:
    """``value`` (a task's reference or meta) as JSON text that :func:`loads_reference` reverses.

    :param value: JSON types, tuples, mappings with string keys, and dataclasses from ``grpo_envs``.
    :raises TypeError: a value that cannot be written (named with its path inside ``value``).
    """
    return json.dumps(_encode(value, "reference"), ensure_ascii=False, sort_keys=True)


def loads_reference(text: str) -> Any:
    """The value :func:`dumps_reference` wrote.

    :param text: JSON text.
    :raises ValueError: ``text`` is not JSON, or names a class outside ``grpo_envs``.
    """
    return _decode(json.loads(text))


def _encode(value: Any, path: str) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, tuple):
        return {_TUPLE: [_encode(v, f"{path}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        fields = {f.name: _encode(getattr(value, f.name), f"{path}.{f.name}") for f in dataclasses.fields(value)}
        return {_DATACLASS: f"{cls.__module__}:{cls.__qualname__}", "fields": fields}
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"{path} has non-string keys; a reference written to a data file needs string keys")
        if _TUPLE in value or _DATACLASS in value:
            raise TypeError(f"{path} uses a reserved key ({_TUPLE} or {_DATACLASS})")
        return {k: _encode(v, f"{path}[{k!r}]") for k, v in value.items()}
    raise TypeError(f"{path} is a {type(value).__name__}, which cannot be written to a data file as JSON")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if _TUPLE in value:
        return tuple(_decode(v) for v in value[_TUPLE])
    if _DATACLASS in value:
        cls = _trusted_dataclass(str(value[_DATACLASS]))
        return cls(**{k: _decode(v) for k, v in value["fields"].items()})
    return {k: _decode(v) for k, v in value.items()}


def _trusted_dataclass(name: str) -> type:
    module_name, _, qualname = name.partition(":")
    if not module_name.startswith(_TRUSTED_PREFIX):
        raise ValueError(f"a reference names the class {name!r}; only grpo_envs dataclasses are rebuilt")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not (isinstance(obj, type) and dataclasses.is_dataclass(obj)):
        raise ValueError(f"a reference names {name!r}, which is not a dataclass")
    return obj


__all__ = ["dumps_reference", "loads_reference"]
