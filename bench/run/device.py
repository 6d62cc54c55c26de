"""The device a run trains on (``device=``): chosen by ``auto``, or named and checked."""

from __future__ import annotations

import torch

DEVICES = "auto, cpu, cuda, cuda:N or mps"


def pick_device(name: str) -> torch.device:
    """``auto``: CUDA if there is one, then Apple's MPS, else the CPU; other names are checked."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; choose {DEVICES}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asks for CUDA, but this machine has none; use auto or cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {name!r} asks for Apple's MPS, but this machine has none; use auto or cpu")
    return device
