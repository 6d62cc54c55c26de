"""A run's adapter in peft's format: ``adapter/adapter_model.safetensors`` and ``adapter_config.json``."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from bench.results.run_folder import ADAPTER_WEIGHTS, write_json


def save_adapter(folder: Path, state_dict: dict[str, torch.Tensor], adapter_config: dict | None) -> int:
    """Write peft's adapter files; returns the size in bytes of adapter_model.safetensors."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    save_file(tensors, str(folder / ADAPTER_WEIGHTS), metadata={"format": "pt"})
    if adapter_config is not None:
        write_json(folder / "adapter_config.json", adapter_config)
    return (folder / ADAPTER_WEIGHTS).stat().st_size
