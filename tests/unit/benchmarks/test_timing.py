"""bench.benchmarks.timing: a run's first and median times, and the wall clock around one call, read from
a stubbed clock (no timed assertions)."""

from __future__ import annotations

import pytest
import torch

from bench.benchmarks import timing
from bench.benchmarks.timing import Timing, timed

CPU = torch.device("cpu")


def test_timing_keeps_the_first_call_and_the_median_after_the_warmup():
    assert Timing.of([900.0, 5.0, 3.0, 4.0], warmup=1) == Timing(first_ms=900.0, median_ms=4.0)
    assert Timing.of([900.0, 5.0, 3.0, 4.0], warmup=2) == Timing(first_ms=900.0, median_ms=3.5)
    assert Timing.of([7.0], warmup=0) == Timing(first_ms=7.0, median_ms=7.0)


def test_timed_returns_the_milliseconds_and_what_the_call_returned(monkeypatch):
    clock = iter([10.0, 10.25])
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(clock))
    ms, value = timed(lambda: "done", CPU)
    assert (ms, value) == (pytest.approx(250.0), "done")


def test_only_a_cuda_device_is_synchronized(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", calls.append)
    timed(lambda: None, CPU)
    assert calls == []
    cuda = torch.device("cuda", 0)
    timing.sync(cuda)
    assert calls == [cuda]
