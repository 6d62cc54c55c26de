"""QLoRA as LoRA: LoRA's adapter defaults on QLoRA's NF4 base, and the same layers quantized as adapted."""

from __future__ import annotations

import dataclasses

from helpers.paths import ROOT
from omegaconf import OmegaConf

import variants
from bench.config.schemas import BERT_TARGETS
from variants.base import Targets, adapter_layers
from variants.lora import LoRAConfig
from variants.qlora import QLoRAConfig, QLoRALinear
from variants.qlora_as_lora import QLoRAAsLoRA, QLoRAAsLoRAConfig

ADAPTER = ("lr", "r", "alpha", "dropout", "targets")


def test_registered_with_lora_s_adapter_and_qlora_s_storage():
    assert variants.get("qlora_as_lora") is QLoRAAsLoRA
    ours, lora, qlora = QLoRAAsLoRAConfig(), LoRAConfig(), QLoRAConfig()
    assert {k: getattr(ours, k) for k in ADAPTER} == {k: getattr(lora, k) for k in ADAPTER}
    assert {k: getattr(ours, k) for k in ADAPTER} != {k: getattr(qlora, k) for k in ADAPTER}
    shared = {f.name for f in dataclasses.fields(QLoRAConfig)} - {"name", *ADAPTER}
    assert {k: getattr(ours, k) for k in shared} == {k: getattr(qlora, k) for k in shared}
    yaml = OmegaConf.load(ROOT / "conf" / "variant" / "qlora_as_lora.yaml")
    assert yaml.pop("defaults") == ["qlora_as_lora_schema", "_self_"]
    assert not yaml  # every default is the class's


def test_quantizes_exactly_the_attention_targets(tiny_bert):
    model = tiny_bert()
    variant = variants.build("qlora_as_lora", {})
    variant.apply(model, Targets(modules=list(BERT_TARGETS["attention"]), head=["classifier"]))
    layers = adapter_layers(model)
    assert layers and all(isinstance(m, QLoRALinear) for m in layers.values())
    assert {name.rsplit(".", 1)[-1] for name in layers} == set(BERT_TARGETS["attention"])
    assert all(m.r == LoRAConfig.r for m in layers.values())
