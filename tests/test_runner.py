"""Runner helpers: device choice and per-run peak memory."""

import numpy as np
import torch

from bench.runner import peak_memory_mb, pick_device, reset_peak_memory


def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    mps = torch.backends.mps.is_available()
    expected = "cuda" if torch.cuda.is_available() else "mps" if mps else "cpu"
    assert pick_device("auto").type == expected


def test_peak_memory_is_per_run():
    cpu = torch.device("cpu")
    big = np.ones(50_000_000)  # 400 MB resident
    big.sum()
    before = peak_memory_mb(cpu)
    del big
    reset_peak_memory(cpu)
    after_reset = peak_memory_mb(cpu)
    assert after_reset < before - 300  # the earlier peak no longer counts
    again = np.ones(25_000_000)  # 200 MB
    again.sum()
    assert peak_memory_mb(cpu) > after_reset + 150
