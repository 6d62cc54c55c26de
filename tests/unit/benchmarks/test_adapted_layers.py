"""bench.benchmarks.adapted_layers: each variant's own targets unless --targets names others, and the
suffixes that name no module of the model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from helpers.ln_tuning import LNTuning, LNTuningConfig

import variants
from bench.benchmarks import adapted_layers
from bench.inputs.models import model_config
from variants.base import Targets

TINY = model_config("tiny")


@dataclass
class ListConfig(LNTuningConfig):
    targets: Any = field(default_factory=lambda: ["LayerNorm", "query"])  # a list, as Hydra may give


class LNTuningOnAList(LNTuning):
    Config = ListConfig


def test_a_preset_or_suffixes_of_real_modules_are_known():
    assert adapted_layers.unknown_targets(None, TINY, 2) == []
    assert adapted_layers.unknown_targets("all_linear", TINY, 2) == []
    assert adapted_layers.unknown_targets("query,LayerNorm,attention.output.dense", TINY, 2) == []
    assert adapted_layers.unknown_targets("query,mlp,gate_proj", TINY, 2) == ["mlp", "gate_proj"]


def test_each_variant_adapts_its_own_targets_unless_told(monkeypatch):
    assert adapted_layers.variant_targets("lora", TINY, None) == (
        "attention",
        Targets(modules=["query", "value"], head=["classifier"]),
    )
    label, targets = adapted_layers.variant_targets("lora", TINY, "key,value")
    assert (label, targets.modules) == ("key,value", ["key", "value"])
    monkeypatch.setitem(variants.registry._REGISTRY, "ln_tuning", LNTuning)
    assert adapted_layers.variant_targets("ln_tuning", TINY, None)[0] == "LayerNorm"
    monkeypatch.setitem(variants.registry._REGISTRY, "ln_tuning", LNTuningOnAList)
    label, targets = adapted_layers.variant_targets("ln_tuning", TINY, None)
    assert (label, targets.modules) == ("LayerNorm,query", ["LayerNorm", "query"])
