"""What a run costs in memory: the peak while it trains, and the bytes its model holds.

The peak counts from the moment training starts (the model built, adapted and on its device, the data
tokenized), so what a real setup never holds (QLoRA's dense weights before quantization, earlier runs of
a sweep process, what a first run pays once) is left out:

- CUDA: torch's peak allocation (``max_memory_allocated``), reset then; it includes the weights held.
- CPU: the bytes the model holds (``model_bytes``) plus how far the process's resident memory rose above
  its level at that moment (Linux ``VmHWM``, reset then through ``/proc/self/clear_refs``): the weights
  as held plus what training adds (activations, gradients, optimizer state, the math libraries' working
  memory). The heap freed so far is first handed back to the OS (glibc ``malloc_trim``), so the rise is
  the same whether a run is the first of its process or the tenth. What the process held before
  (libraries, data) is left out.
"""

from __future__ import annotations

import ctypes
import gc
import resource
from pathlib import Path

import torch
from torch import nn

KINDS = {"cuda": "cuda_max_allocated_from_model_built", "cpu": "model_bytes_plus_cpu_rss_rise_in_training"}


def _status_mb(field: str) -> float | None:
    """A ``/proc/self/status`` field (VmRSS, VmHWM) in MB; None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _release_free_heap() -> None:
    """Hand the heap memory freed so far back to the OS (glibc ``malloc_trim``), so that resident memory is
    what is live: otherwise a run reuses what an earlier one freed and its rise stays hidden."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: resident memory may include freed memory
        pass


class PeakMemory:
    """Call ``model_ready(model)`` when training starts, ``peak_mb()`` after it."""

    def __init__(self, device: torch.device):
        self.device = device
        self.kind = KINDS["cuda" if device.type == "cuda" else "cpu"]
        self.ready_rss_mb = self.model_mb = 0.0

    def model_ready(self, model: nn.Module) -> None:
        """Start the peak from now (the dense load before quantization and earlier runs do not count)."""
        gc.collect()
        _release_free_heap()
        self.model_mb = model_bytes(model) / 2**20
        self.ready_rss_mb = _status_mb("VmRSS") or 0.0
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        try:  # Linux: "5" resets the process's resident-memory high-water mark (VmHWM) to VmRSS
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            pass

    def peak_mb(self) -> float:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        peak = _status_mb("VmHWM")
        if peak is None:  # not Linux: the process's lifetime peak, from zero
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return self.model_mb + max(0.0, peak - self.ready_rss_mb)


def model_bytes(model: nn.Module) -> int:
    """The bytes the model's parameters and buffers hold, as stored (QLoRA's NF4 codes, not dense W)."""
    seen, total = set(), 0
    for t in [*model.parameters(), *model.buffers()]:
        key = (t.untyped_storage().data_ptr(), t.dtype, t.shape)
        if key not in seen:
            seen.add(key)
            total += t.numel() * t.element_size()
    return total
