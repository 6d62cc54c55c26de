"""QLoRA on the tiny BERT: the base is dequant(quant(W)), only adapters and head train, merge/unmerge,
the saved adapter round-trips, the memory summary, and the bitsandbytes backend stores the same NF4.
(peft's LoRA over the dequantized base giving the same outputs: tests/reference/test_peft_parity.py.)"""

from __future__ import annotations

import math

import pytest
import torch
from helpers.dequantized import dequantized_copy
from helpers.paths import ROOT
from helpers.training import train_a_few_steps
from omegaconf import OmegaConf
from torch import nn

import variants
from bench.config.schemas import BERT_TARGETS, ModelConfig
from bench.inputs.models import tiny_model
from variants import build
from variants.base import Targets, adapter_layers
from variants.nf4 import NF4Linear
from variants.qlora import QLoRA, QLoRAConfig, QLoRALinear

RTOL, ATOL = 1e-5, 1e-6
ALL_LINEAR = Targets(modules=list(BERT_TARGETS["all_linear"]), head=["classifier"])
OPTIONS = {"r": 8, "alpha": 16.0}  # the recipe's r 64 exceeds the tiny model's width (32)


def qlora_model(model: nn.Module, **options) -> tuple[nn.Module, QLoRA]:
    variant = build("qlora", {**OPTIONS, **options})
    variant.apply(model, ALL_LINEAR)
    return model.eval(), variant


def outputs(model, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and the last hidden state (O(1), so more sensitive than the tiny logits)."""
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True)
    return out.logits, out.hidden_states[-1]


def assert_same(a, b, rtol: float = RTOL, atol: float = ATOL) -> None:
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, rtol=rtol, atol=atol)


def trained(tiny_bert, tiny_batch):
    model, variant = qlora_model(tiny_bert())
    return train_a_few_steps(model, variant, tiny_batch), variant


def test_registered_with_the_recipe_defaults():
    assert variants.get("qlora") is QLoRA
    c = QLoRAConfig()
    assert (c.r, c.alpha, c.dropout, c.lr) == (64, 16.0, 0.05, 2e-4)
    assert (c.targets, c.backend) == ("all_linear", "ours")
    yaml = OmegaConf.load(ROOT / "conf" / "variant" / "qlora.yaml")
    assert yaml.pop("defaults") == ["qlora_schema", "_self_"]
    assert {k: getattr(c, k) for k in yaml} == OmegaConf.to_container(yaml)


def test_target_linears_are_quantized(tiny_bert):
    model, _ = qlora_model(tiny_bert())
    layers = adapter_layers(model)
    assert len(layers) == 12 and all(isinstance(m, QLoRALinear) for m in layers.values())
    assert all(isinstance(m.base_layer, NF4Linear) for m in layers.values())
    assert not any(isinstance(m, nn.Linear) for m in model.bert.encoder.modules())  # all 6 per layer
    assert isinstance(model.classifier, nn.Linear) and isinstance(model.bert.pooler.dense, nn.Linear)


def test_output_at_init_is_the_dequantized_base(tiny_bert, tiny_batch):
    base = tiny_bert()
    reference, dense = outputs(dequantized_copy(base, ALL_LINEAR), tiny_batch), outputs(base, tiny_batch)
    model, _ = qlora_model(base)
    ours = outputs(model, tiny_batch)
    assert_same(ours, reference)
    assert_same(ours, dense, rtol=0.05, atol=0.05)  # 4-bit weights: close to the fp32 base, not equal
    assert not torch.allclose(ours[1], dense[1], rtol=RTOL, atol=ATOL)


def test_only_adapters_and_head_change(tiny_bert, tiny_batch):
    model, variant = qlora_model(tiny_bert())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train_a_few_steps(model, variant, tiny_batch)
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert changed == trainable
    assert trainable == {n for n in before if ".lora_" in n or n.startswith("classifier.")}
    assert len(trainable) == 2 * 12 + 2


def test_merge_equals_unmerged_and_unmerge_restores_storage(tiny_bert, tiny_batch):
    model, variant = trained(tiny_bert, tiny_batch)
    unmerged = outputs(model, tiny_batch)
    layers = adapter_layers(model)
    storage = {n: (m.base_layer, [b.clone() for b in m.base_layer.buffers()]) for n, m in layers.items()}
    expected = {n: m.base_layer.dequantize(torch.float32) + m.delta_weight() for n, m in layers.items()}
    summary = variant.summary(model)
    variant.merge(model)
    assert variant.summary(model) == summary  # the NF4 storage is kept aside while merged
    for name, layer in layers.items():
        assert type(layer.base_layer) is nn.Linear and not layer.base_layer.weight.requires_grad
        torch.testing.assert_close(layer.base_layer.weight, expected[name], rtol=0, atol=0)
    merged = outputs(model, tiny_batch)
    assert_same(merged, unmerged)
    variant.merge(model)  # idempotent
    assert_same(outputs(model, tiny_batch), merged, rtol=0, atol=0)
    assert not any(".base_layer.codes" in k for k in model.state_dict())  # a merged model is dense
    variant.unmerge(model)
    for name, layer in layers.items():
        module, buffers = storage[name]
        assert layer.base_layer is module and not layer.merged
        assert all(torch.equal(a, b) for a, b in zip(module.buffers(), buffers, strict=True))
    assert_same(outputs(model, tiny_batch), unmerged, rtol=0, atol=0)


def test_adapter_round_trip(tiny_bert, tiny_batch):
    model, variant = trained(tiny_bert, tiny_batch)
    sd = variant.adapter_state_dict(model)
    lora_model = tiny_bert()
    lora = build("lora", {"r": 8, "alpha": 16.0})
    lora.apply(lora_model, ALL_LINEAR)
    assert set(sd) == set(lora.adapter_state_dict(lora_model))  # the same keys as a LoRA adapter
    config = variant.adapter_config(model, "tiny-bert")
    assert (config["peft_type"], config["r"], config["lora_alpha"]) == ("LORA", 8, 16.0)
    assert config["target_modules"] == ALL_LINEAR.modules and config["modules_to_save"] == ["classifier"]
    fresh, fresh_variant = qlora_model(tiny_bert())
    assert not torch.equal(fresh.classifier.weight, model.classifier.weight)
    fresh_variant.load_adapter_state_dict(fresh, sd)
    assert_same(outputs(fresh, tiny_batch), outputs(model, tiny_batch), rtol=0, atol=0)
    with pytest.raises(KeyError, match="missing"):
        fresh_variant.load_adapter_state_dict(fresh, {k: v for k, v in sd.items() if "query" not in k})


def test_summary_counts_the_quantized_storage(tiny_bert):
    model, variant = qlora_model(tiny_bert())
    s = variant.summary(model)
    sizes = [m.in_features * m.out_features for m in adapter_layers(model).values()]
    assert sorted(set(sizes)) == [32 * 32, 32 * 64]  # q, k, v, attention.output; intermediate, output
    assert (s["quantized_layers"], s["quantized_params"]) == (12, sum(sizes))
    assert s["quantized_bytes"] == sum(n // 2 + n // 64 + 4 * math.ceil(n / 64 / 256) + 4 for n in sizes)
    assert s["bits_per_quantized_param"] == 8 * s["quantized_bytes"] / s["quantized_params"]


def test_bits_per_param_about_4_13():
    """Hidden 256: every weight fills whole 256-block groups of absmax, as in real models."""
    cfg = ModelConfig(name="tiny", source="tiny", hidden_size=256, intermediate_size=1024, num_layers=1)
    model, variant = qlora_model(tiny_model(cfg, 2))
    bits = variant.summary(model)["bits_per_quantized_param"]
    assert bits == pytest.approx(4.127, abs=1e-3)


def test_unknown_backend_names_the_choices():
    with pytest.raises(ValueError, match="unknown qlora backend 'gptq'; choose one of ours, bnb"):
        build("qlora", {"backend": "gptq"})


def test_bnb_backend_needs_cuda(tiny_bert, monkeypatch):
    pytest.importorskip("bitsandbytes")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    variant = build("qlora", {**OPTIONS, "backend": "bnb"})
    with pytest.raises(RuntimeError, match="backend='bnb' needs a CUDA device"):
        variant.apply(tiny_bert(), ALL_LINEAR)


def test_bnb_backend_stores_the_same_nf4(monkeypatch):
    """The bnb path on the CPU (bitsandbytes 0.50 runs there), CUDA pretended: same bytes, same merge.

    Widths are multiples of 64: bnb's CPU dequantization kernel is only consistent for those (see
    test_nf4). No forward on the CPU: bnb repacks the weight for its CPU kernel on the first forward.
    """
    pytest.importorskip("bitsandbytes")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    cfg = ModelConfig(name="tiny", source="tiny", hidden_size=64, intermediate_size=128)
    ours, ours_variant = qlora_model(tiny_model(cfg, 2))
    theirs, bnb_variant = qlora_model(tiny_model(cfg, 2), backend="bnb")
    bnb_variant.load_adapter_state_dict(theirs, ours_variant.adapter_state_dict(ours))
    assert ours_variant.summary(ours) == bnb_variant.summary(theirs)
    pairs = list(zip(adapter_layers(ours).values(), adapter_layers(theirs).values(), strict=True))
    for a, b in pairs:
        assert torch.equal(a.base_layer.dequantize(), b.base_layer.dequantize())
    bnb_variant.merge(theirs)
    ours_variant.merge(ours)
    for a, b in pairs:
        assert torch.equal(a.base_layer.weight, b.base_layer.weight)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bnb_backend_matches_ours_on_cuda(tiny_batch):
    pytest.importorskip("bitsandbytes")
    cfg = ModelConfig(name="tiny", source="tiny", hidden_size=64, intermediate_size=128)
    ours, ours_variant = qlora_model(tiny_model(cfg, 2).cuda())
    theirs, bnb_variant = qlora_model(tiny_model(cfg, 2).cuda(), backend="bnb")
    bnb_variant.load_adapter_state_dict(theirs, ours_variant.adapter_state_dict(ours))
    batch = {k: v.cuda() for k, v in tiny_batch.items()}
    assert_same(outputs(theirs, batch), outputs(ours, batch), rtol=1e-3, atol=1e-4)
