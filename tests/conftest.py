"""Fixtures shared by several test files."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def torch_one_thread() -> Iterator[None]:
    """Tiny matrices: one intra-op thread is as fast, and does not contend on a busy machine."""
    import torch  # here, not at the top: the environment tests never load torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch) -> Iterator[None]:
    """Warm starts go to a fresh cache (``GRPO_GYM_CACHE``); torch's thread count is restored
    after a test whose ``grpo train --threads`` changed it."""
    import torch

    monkeypatch.setenv("GRPO_GYM_CACHE", str(tmp_path / "cache"))
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)
