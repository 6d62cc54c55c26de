"""Inference latency for bench.benchmarks.speed: one forward in eval mode under ``torch.inference_mode``
(bf16 autocast
on CUDA, as in training) of the base model, of a variant's model with its adapters unmerged, and merged
(``Variant.merge``, then ``unmerge`` after each timed forward), interleaved on one batch.

A variant that declares nothing to merge (``Variant.mergeable`` False: ``full``, ``head``, an
input-level method) has its merged cells empty, with the reason in ``merge_note``. ``merged_max_diff`` is
the largest absolute difference of the merged and unmerged logits of the last forward (a merge must not
change what the model computes).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from bench.benchmarks.timing import Timing, timed
from bench.run.loop import autocast
from variants.base import Variant

INFERENCE_COLUMNS = [
    "variant", "base_ms", "unmerged_ms", "merged_ms", "unmerged_vs_base", "merged_vs_base", "merged_max_diff",
    "merge_note",
]  # fmt: skip
NO_MERGE = "nothing to merge (mergeable = False)"


def logits(model: nn.Module, inputs: dict[str, Tensor], device: torch.device) -> Tensor:
    with torch.inference_mode(), autocast(device):
        return model(**inputs).logits.float()


def latency(
    base: nn.Module, variant: Variant, model: nn.Module, batch: dict[str, Tensor], warmup: int, reps: int,
    device: torch.device, bar: tqdm,
) -> dict[str, Any]:  # fmt: skip
    """One row of INFERENCE_COLUMNS: median ms per forward over ``reps`` after ``warmup``. ``model`` is left
    unmerged and in the mode it came in; ``bar`` grows by the forwards and counts them."""
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    phases = ["base", "unmerged"] + (["merged"] if variant.mergeable else [])
    ms: dict[str, list[float]] = {p: [] for p in phases}
    out: dict[str, Tensor] = {}
    bar.total = (bar.total or 0) + len(phases) * (warmup + reps)

    def forward(phase: str) -> tuple[float, Tensor]:
        if phase == "merged":
            variant.merge(model)
        try:
            return timed(lambda: logits(base if phase == "base" else model, inputs, device), device)
        finally:
            if phase == "merged":
                variant.unmerge(model)

    modes = base.training, model.training
    base.eval()
    model.eval()
    try:
        for _ in range(warmup + reps):
            for phase in phases:
                bar.set_description(f"{variant.name}/{phase}")
                t, out[phase] = forward(phase)
                ms[phase].append(t)
                bar.update(1)
    finally:
        base.train(modes[0])
        model.train(modes[1])
    med = {p: Timing.of(ms[p], warmup).median_ms for p in phases}
    merged = med.get("merged")
    return {
        "variant": variant.name,
        "base_ms": round(med["base"], 3),
        "unmerged_ms": round(med["unmerged"], 3),
        "merged_ms": "" if merged is None else round(merged, 3),
        "unmerged_vs_base": round(med["unmerged"] / med["base"], 4),
        "merged_vs_base": "" if merged is None else round(merged / med["base"], 4),
        "merged_max_diff": ""
        if merged is None
        else float(f"{(out['merged'] - out['unmerged']).abs().max():.3g}"),
        "merge_note": "" if merged is not None else NO_MERGE,
    }
