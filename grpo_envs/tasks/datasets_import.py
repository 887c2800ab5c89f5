"""The ``datasets`` library, imported when a dataset is loaded and not before (it is heavy and optional)."""

from __future__ import annotations

from types import ModuleType


def import_datasets() -> ModuleType:
    """``import datasets``, or an error that says how to install it.

    :raises ModuleNotFoundError: when the ``datasets`` extra is not installed.
    """
    try:
        import datasets
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            "loading a dataset needs the 'datasets' package: pip install 'grpo-gym[datasets]' "
            "(the built-in task generators need nothing more)"
        ) from exc
    return datasets
