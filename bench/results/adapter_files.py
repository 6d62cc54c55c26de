"""A run's adapter in peft's format: ``adapter/adapter_model.safetensors`` and ``adapter_config.json``,
plus ``base_model.json``: the fingerprint of the base weights it was trained on.

The fingerprint (``base_fingerprint``) is a sha256 over the base model's parameters as loaded, before
the variant adapts it, in name order (each name, dtype, shape and bytes); the head is left out, since it
is trained and saved with the adapter. It sits in a file of its own, so peft reads the adapter folder as
before. ``check_base`` compares it with a base about to receive the adapter: another base with the same
shapes but other weights is refused (its predictions would differ from the run's), or warned about when
the caller allows it; a folder saved without the file is loaded with a notice.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from bench.log import log
from bench.results.run_folder import ADAPTER_WEIGHTS, follow_umask, write_json
from variants.base import is_head

BASE_MODEL = "base_model.json"  # in the adapter folder: the base weights' fingerprint


def save_adapter(
    folder: Path,
    state_dict: dict[str, torch.Tensor],
    adapter_config: dict | None,
    base: dict[str, Any] | None = None,
) -> int:
    """Write peft's adapter files and, given ``base`` (``base_record``), base_model.json; returns the
    size in bytes of adapter_model.safetensors."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    save_file(tensors, str(folder / ADAPTER_WEIGHTS), metadata={"format": "pt"})
    follow_umask(folder / ADAPTER_WEIGHTS)
    if adapter_config is not None:
        write_json(folder / "adapter_config.json", adapter_config)
    if base is not None:
        write_json(folder / BASE_MODEL, base)
    return (folder / ADAPTER_WEIGHTS).stat().st_size


def base_fingerprint(model: nn.Module, head: list[str]) -> str:
    """The sha256 (hex) of ``model``'s parameters outside ``head``, in name order: each one's name, dtype,
    shape and bytes. Call it on the base as loaded, before a variant adapts it."""
    h = hashlib.sha256()
    for name, p in sorted(model.named_parameters(), key=lambda item: item[0]):
        if is_head(name, head):
            continue
        t = p.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().data)
    return h.hexdigest()


def base_record(name_or_path: str, sha256: str, head: list[str]) -> dict[str, Any]:
    """What base_model.json holds: the base's name or path, its weights' sha256 and the head left out."""
    return {"name_or_path": name_or_path, "sha256": sha256, "head_left_out": list(head)}


def check_base(folder: Path, sha256: str, allow_other_base: bool = False) -> None:
    """Refuse to load the adapter of ``folder`` onto a base whose fingerprint ``sha256`` differs from the
    one it was trained on (a ValueError naming both), or with ``allow_other_base`` warn; a folder without
    base_model.json loads with a notice."""
    path = Path(folder) / BASE_MODEL
    if not path.is_file():
        log.warning("%s has no %s (saved without it): its base weights are not checked", folder, BASE_MODEL)
        return
    recorded = json.loads(path.read_text())
    if recorded["sha256"] == sha256:
        return
    what = (
        f"the adapter in {folder} was trained on base weights {recorded['sha256'][:16]} "
        f"({recorded.get('name_or_path')}), but the base it is loaded onto has {sha256[:16]}"
    )
    if allow_other_base:
        log.warning("%s; loading it anyway (allow_other_base): predictions will differ from the run's", what)
        return
    raise ValueError(
        f"{what}: same shapes, other weights, so its predictions would differ from the run's. Load the "
        "run's own base model, or pass allow_other_base=True to load it anyway"
    )
