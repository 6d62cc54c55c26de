"""The contract's kinds of update beyond a low-rank linear one: modules of any declared type, a
multiplicative update, nothing to merge, and the adapter config each kind writes."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from helpers.ln_tuning import LNTuning, LNTuningLayer
from torch import nn

import variants
from variants.base import AdapterLayer, Targets, Variant, VariantConfig, adapter_layers, wrap_modules

LAYERNORMS = Targets(modules=["LayerNorm"], head=["classifier"])


def test_wrap_modules_wraps_the_declared_type(tiny_bert):
    model = tiny_bert()
    wrapped = wrap_modules(model, LAYERNORMS, lambda name, m: LNTuningLayer(m), (nn.LayerNorm,))
    assert list(wrapped) == [
        "bert.embeddings.LayerNorm",
        *(f"bert.encoder.layer.{i}.{p}.LayerNorm" for i in (0, 1) for p in ("attention.output", "output")),
    ]
    assert all(model.get_submodule(n) is m for n, m in wrapped.items())
    assert not any(isinstance(m, AdapterLayer) for m in model.modules() if isinstance(m, nn.Linear))


def test_wrap_modules_names_the_declared_type_when_nothing_matches(tiny_bert):
    with pytest.raises(ValueError, match=r"\['query'\] match no LayerNorm layer.*bert.embeddings.LayerNorm"):
        wrap_modules(tiny_bert(), Targets(["query"]), lambda name, m: None, (nn.LayerNorm,))
    assert wrap_modules(tiny_bert(), Targets(["nope"]), lambda name, m: None, ()) == {}


def test_a_variant_that_wraps_no_module_needs_no_make_layer(tiny_bert, attention_targets):
    @dataclass
    class BiasesConfig(VariantConfig):
        name: str = "biases"

    class Biases(Variant):
        name = "biases"
        Config = BiasesConfig
        wraps = ()
        mergeable = False

        def freeze(self, model):
            for n, p in model.named_parameters():
                p.requires_grad_(n.endswith(".bias") or n.startswith("classifier."))

    model = tiny_bert()
    variant = Biases()
    variant.apply(model, attention_targets)
    assert adapter_layers(model) == {} and variant.adapter_config(model, "tiny") is None
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert "bert.encoder.layer.0.attention.self.query.bias" in trainable and "classifier.weight" in trainable
    weights = {k: t.clone() for k, t in model.state_dict().items()}
    variant.merge(model)
    assert all(torch.equal(weights[k], t) for k, t in model.state_dict().items())  # nothing to merge


class Scaled(AdapterLayer):
    """A multiplicative update of a linear layer, l * (W x + b) (IA3 on an output)."""

    def __init__(self, base_layer: nn.Linear):
        super().__init__(base_layer)
        self.scale = nn.Parameter(torch.linspace(0.5, 1.5, self.out_features))

    def forward(self, x):
        out = self.base_layer(x)
        return out if self.merged else out * self.scale

    def merged_weight(self):
        return self.scale[:, None] * self.base_weight()

    def merged_bias(self):
        return self.scale * self.base_layer.bias

    def delta_weight(self):
        return self.merged_weight() - self.base_weight()

    def delta_bias(self):
        return self.merged_bias() - self.base_layer.bias

    def adapter_tensors(self):
        return {"scale": self.scale}


def test_a_multiplicative_update_merges_exactly_and_unmerges():
    torch.manual_seed(0)
    linear = nn.Linear(6, 5)
    w, b = linear.weight.detach().clone(), linear.bias.detach().clone()
    layer = Scaled(linear)
    x = torch.randn(3, 6)
    with torch.no_grad():
        unmerged = layer(x)
        layer.merge()
        assert torch.equal(linear.weight, layer.scale[:, None] * w) and torch.equal(
            linear.bias, layer.scale * b
        )
        torch.testing.assert_close(layer(x), unmerged, rtol=1e-6, atol=1e-6)
        layer.unmerge()
    assert torch.equal(linear.weight, w) and torch.equal(linear.bias, b)


def test_adapter_config_writes_the_common_fields_and_each_method_its_own(tiny_bert, attention_targets):
    ln = LNTuning()
    ln_config = ln.adapter_config(ln.apply(tiny_bert(), LAYERNORMS), "base")
    assert ln_config == {
        "peft_type": "LN_TUNING",
        "task_type": "SEQ_CLS",
        "base_model_name_or_path": "base",
        "revision": None,
        "inference_mode": True,
        "target_modules": ["LayerNorm"],
        "modules_to_save": ["classifier"],
    }
    lora = variants.build("lora")
    lora_config = lora.adapter_config(lora.apply(tiny_bert(), attention_targets), "base")
    assert {k: lora_config[k] for k in ("bias", "fan_in_fan_out", "r")} == {
        "bias": "none",
        "fan_in_fan_out": False,
        "r": 8,
    }
    assert set(ln_config) < set(lora_config)  # LoRA's fields are LoRA's own
