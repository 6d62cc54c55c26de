"""``torch.compile`` behind one switch: ``train.compile`` in training, ``--compile`` in
bench.benchmarks.speed.

off   eager PyTorch
on    compile the model (inductor); batches are padded to a multiple of PAD_MULTIPLE tokens so that
      length-grouped batches reuse a few compiled shapes instead of recompiling for every length
auto  on CUDA, off elsewhere: on a 2-core CPU a compiled MiniLM step measured no faster than eager
      (the speed benchmark, ``peft-bench speed --compile on``)
"""

from __future__ import annotations

import torch
from torch import nn

COMPILE_MODES = ("auto", "on", "off")
PAD_MULTIPLE = 8  # tokens; a batch's length is rounded up to it when compiled


def check_mode(mode: str) -> None:
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile={mode!r} is not valid: choose one of {', '.join(COMPILE_MODES)}")


def wanted(mode: str, device: torch.device) -> bool:
    """Whether ``mode`` compiles on ``device``."""
    check_mode(mode)
    return mode == "on" or (mode == "auto" and device.type == "cuda")


def compiled(model: nn.Module, mode: str, device: torch.device) -> nn.Module:
    """``model`` compiled in place when ``mode`` asks for it on ``device`` (its parameters and state_dict
    keys stay those of ``model``), else unchanged."""
    if wanted(mode, device):
        model.compile(dynamic=None)  # shapes that vary after the first recompile are made dynamic
    return model
