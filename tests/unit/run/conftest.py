"""Fixtures of the run package's tests."""

from __future__ import annotations

import pytest

from bench.run import process_cache


@pytest.fixture
def nothing_loads(monkeypatch):
    """Loading a task, a tokenizer or a model fails the test (the process cache emptied first)."""

    def no_load(*args, **kwargs):
        raise AssertionError("something loaded before the checks ended")

    process_cache.clear()
    for name in ("load_task", "load_tokenizer", "load_model"):
        monkeypatch.setattr(process_cache, name, no_load)
