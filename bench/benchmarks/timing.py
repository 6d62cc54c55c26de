"""Wall-clock timing of device work for the benchmarks: each call is synchronized on CUDA."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch

T = TypeVar("T")


@dataclass(frozen=True)
class Timing:
    """One run's times: its first call (a compile, when compiled) and the median after the warm-up."""

    first_ms: float
    median_ms: float

    @classmethod
    def of(cls, ms: list[float], warmup: int) -> Timing:
        return cls(first_ms=ms[0], median_ms=statistics.median(ms[warmup:]))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], T], device: torch.device) -> tuple[float, T]:
    """ms that ``fn()`` takes on ``device``, and what it returns."""
    sync(device)
    start = time.perf_counter()
    result = fn()
    sync(device)
    return 1e3 * (time.perf_counter() - start), result
