"""The contract's shared pieces: abstract required methods, target matching, the adapted layers found in
the model, merge safety, strict adapter loading."""

import pytest
import torch
from torch import nn

import variants
from variants.base import AdapterLayer, Targets, Variant, adapter_layers, matches, wrap_modules
from variants.lora import LoRA, LoRALinear


def test_a_layer_without_its_required_methods_cannot_be_made():
    class NoDelta(AdapterLayer):
        def forward(self, x):
            return self.base_layer(x)

        def adapter_tensors(self):
            return {}

    with pytest.raises(TypeError, match="abstract method.*delta_weight"):
        NoDelta(nn.Linear(4, 4))
    with pytest.raises(TypeError, match="abstract methods.*adapter_tensors.*delta_weight.*forward"):
        AdapterLayer(nn.Linear(4, 4))


def test_a_variant_without_make_layer_cannot_be_built():
    """Forgetting make_layer would otherwise train the head alone without a word."""

    class Forgetful(Variant):
        name = "forgetful"

    with pytest.raises(TypeError, match="Forgetful wraps linear modules but defines no make_layer"):
        Forgetful()
    assert isinstance(LoRA(), Variant)


def test_the_adapted_layers_are_found_in_the_model(tiny_bert, attention_targets):
    """One source: the model itself (the variant keeps no list of its own), in module order."""
    variant = variants.build("lora", {"r": 2})
    model = variant.apply(tiny_bert(), attention_targets)
    assert not hasattr(variant, "layers")
    layers = adapter_layers(model)
    assert list(layers) == [
        f"bert.encoder.layer.{i}.attention.self.{m}" for i in (0, 1) for m in ("query", "value")
    ]
    assert all(isinstance(m, LoRALinear) and model.get_submodule(n) is m for n, m in layers.items())


def test_matches_like_peft():
    assert matches("bert.encoder.layer.0.attention.self.query", ["query"])
    assert matches("query", ["query"])
    assert not matches("bert.encoder.layer.0.attention.self.query_proj", ["query"])
    assert matches("x.attention.output.dense", ["attention.output.dense"])


def test_merge_refuses_a_non_finite_weight_and_leaves_w_untouched():
    layer = LoRALinear(nn.Linear(8, 8), r=2, alpha=2, dropout=0.0, use_rslora=False, init="kaiming")
    w = layer.base_layer.weight.detach().clone()
    with torch.no_grad():
        layer.lora_B.fill_(float("inf"))
    with pytest.raises(ValueError, match="not finite"):
        layer.merge()
    assert torch.equal(layer.base_layer.weight, w) and not layer.merged


def test_no_matching_target_names_the_layers(tiny_bert):
    with pytest.raises(ValueError, match=r"target modules \['nope'\] match no linear layer.*query"):
        wrap_modules(tiny_bert(), Targets(["nope"]), lambda name, linear: linear)


def test_load_adapter_state_dict_is_strict(tiny_bert, attention_targets):
    variant = variants.build("lora", {"r": 2})
    model = variant.apply(tiny_bert(), attention_targets)
    sd = variant.adapter_state_dict(model)
    missing = dict(list(sd.items())[1:])
    with pytest.raises(KeyError, match="missing"):
        variant.load_adapter_state_dict(model, missing)
    with pytest.raises(KeyError, match="unexpected"):
        variant.load_adapter_state_dict(model, {**sd, "base_model.model.extra": torch.zeros(1)})


def test_an_adapter_of_another_variant_or_base_model_is_refused_by_name(tiny_bert, attention_targets):
    lora = variants.build("lora", {"r": 2})
    sd = lora.adapter_state_dict(lora.apply(tiny_bert(), attention_targets))
    dora = variants.build("dora", {"r": 2})
    with pytest.raises(KeyError, match="do not match variant 'dora' on this model.*another variant"):
        dora.load_adapter_state_dict(dora.apply(tiny_bert(), attention_targets), sd)
    other_rank = variants.build("lora", {"r": 4})
    with pytest.raises(ValueError, match=r"has shape \(2, 32\), the model's \(4, 32\).*another base model"):
        other_rank.load_adapter_state_dict(other_rank.apply(tiny_bert(), attention_targets), sd)


def test_unknown_variant_and_option_errors():
    with pytest.raises(KeyError, match="unknown variant 'lorra'; available: .*lora"):
        variants.get("lorra")
    with pytest.raises(TypeError, match=r"variant 'lora' has no option\(s\) \['rr'\]"):
        variants.build("lora", {"rr": 3})
