"""Which layers each variant adapts in a benchmark: its own targets (``Config.targets``, what a training
run of it adapts), or the same ``--targets`` for every variant: a preset of the model config or
comma-separated module-name suffixes, each of which must name a module of the model."""

from __future__ import annotations

import torch

import variants
from bench.config.schemas import ModelConfig
from bench.inputs.models import random_init_model, resolve_targets
from variants.base import Targets, matches


def unknown_targets(targets: str | None, cfg: ModelConfig, num_labels: int) -> list[str]:
    """The suffixes of ``targets`` (a preset or None: none) that name no module of ``cfg``'s architecture
    (built on the meta device: no weights)."""
    if targets is None or targets in cfg.targets:
        return []
    with torch.device("meta"):
        names = [n for n, _ in random_init_model(cfg, num_labels).named_modules()]
    return [m for m in resolve_targets(cfg, targets).modules if not any(matches(n, [m]) for n in names)]


def variant_targets(name: str, cfg: ModelConfig, override: str | None) -> tuple[str, Targets]:
    """What variant ``name`` adapts on ``cfg`` (``override``, else its ``Config.targets``) and how a row
    names it (the preset, or the suffixes comma-separated)."""
    spec = override if override is not None else variants.get(name).Config().targets
    return (spec if isinstance(spec, str) else ",".join(spec)), resolve_targets(cfg, spec)
