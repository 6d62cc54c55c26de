"""IA3's layers: which targets scale their output and which their input, the products merge forms, what
trains, the saved keys and config, and peft's twin for the speed benchmark. (Outputs, gradients, train
mode and merged weights against peft's IA3: tests/reference/test_peft_parity.py.)"""

from __future__ import annotations

import json
import warnings

import pytest
import torch
import torch.nn.functional as F
from helpers.peft_reference import assert_same_outputs, outputs, save_adapter_for_test, trained
from safetensors.torch import load_file
from torch import nn

import variants
from bench.testing import check_variant, perturb_biases_and_norms
from variants import build
from variants.base import PEFT_PREFIX, Targets, adapter_layers
from variants.ia3 import IA3, IA3Linear, is_feedforward
from variants.peft_twin import twin

DEFAULT = Targets(modules=["key", "value", "output.dense"], head=["classifier"])  # resolved from the config
LAYER = "bert.encoder.layer.0"


def test_ia3_is_registered_with_peft_defaults_for_bert(compose):
    assert variants.get("ia3") is IA3
    cfg = compose(["variant=ia3", "model=tiny"]).variant
    assert (cfg.lr, cfg.targets, list(cfg.feedforward)) == (3e-3, "key,value,output.dense", ["output.dense"])


def test_feedforward_is_peft_s_plain_suffix_test():
    assert is_feedforward(f"{LAYER}.attention.output.dense", ["output.dense"])
    assert is_feedforward(f"{LAYER}.output.dense", ["output.dense"])
    assert not is_feedforward(f"{LAYER}.intermediate.dense", ["output.dense"])
    assert is_feedforward(f"{LAYER}.mydense", ["dense"])  # no dot boundary, as peft's endswith


def test_ia3_scales_outputs_of_key_value_and_inputs_of_both_output_denses(tiny_bert):
    """Counted by hand on the tiny model (hidden 32, intermediate 64, 2 layers)."""
    model = build("ia3").apply(tiny_bert(), DEFAULT)
    layers = adapter_layers(model).items()
    shapes = {name.removeprefix(LAYER + "."): tuple(m.ia3_l.shape) for name, m in layers}
    assert {k: v for k, v in shapes.items() if "layer" not in k} == {
        "attention.self.key": (32, 1),
        "attention.self.value": (32, 1),
        "attention.output.dense": (1, 32),
        "output.dense": (1, 64),
    }
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == 2 * (32 + 32 + 32 + 64) + (32 * 2 + 2)


def test_feedforward_names_outside_the_targets_are_ignored(tiny_bert, tmp_path, tiny_batch):
    variant, model = trained(tiny_bert, tiny_batch, Targets(modules=["query", "value"]), "ia3")
    assert all(not layer.feedforward for layer in adapter_layers(model).values())
    save_adapter_for_test(variant, model, tmp_path, "tiny-bert")
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert config["feedforward_modules"] == []  # peft requires them among the target modules


def ia3_layer(feedforward: bool, bias: bool = True) -> IA3Linear:
    """A 6 -> 4 layer with a random weight, bias and scale."""
    torch.manual_seed(0)
    layer = IA3Linear(nn.Linear(6, 4, bias=bias), feedforward=feedforward)
    with torch.no_grad():
        layer.ia3_l.uniform_(0.5, 1.5)
    return layer


@pytest.mark.parametrize("bias", [True, False])
def test_attention_layer_scales_the_output_bias_included(bias):
    layer = ia3_layer(feedforward=False, bias=bias)
    x = torch.randn(3, 6)
    base = layer.base_layer
    expected = layer.ia3_l.view(-1) * F.linear(x, base.weight, base.bias)
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=0)
    torch.testing.assert_close(layer(x), base(x) + F.linear(x, layer.delta_weight(), layer.delta_bias()))


def test_feedforward_layer_scales_the_input_not_the_bias():
    layer = ia3_layer(feedforward=True)
    x = torch.randn(3, 6)
    base = layer.base_layer
    torch.testing.assert_close(layer(x), base(x * layer.ia3_l.view(-1)), rtol=0, atol=0)
    assert layer.delta_bias() is None
    torch.testing.assert_close(layer(x), base(x) + F.linear(x, layer.delta_weight()))


@pytest.mark.parametrize(("feedforward", "bias"), [(False, True), (False, False), (True, True)])
def test_merge_forms_the_products_and_unmerge_restores_them_exactly(feedforward, bias):
    layer = ia3_layer(feedforward, bias)
    base = layer.base_layer
    w, b = base.weight.detach().clone(), None if base.bias is None else base.bias.detach().clone()
    l = layer.ia3_l.detach()  # noqa: E741 - the paper's name
    x = torch.randn(3, 6)
    before = layer(x)
    layer.merge()
    assert torch.equal(base.weight, w * l)  # rows (out, 1) or columns (1, in)
    if b is not None:
        assert torch.equal(base.bias, b if feedforward else b * l.view(-1))
    torch.testing.assert_close(layer(x), before)
    layer.unmerge()
    assert torch.equal(base.weight, w) and (b is None or torch.equal(base.bias, b))
    assert torch.equal(layer(x), before)


def test_merge_refuses_a_non_finite_bias():
    layer = ia3_layer(feedforward=False)
    with torch.no_grad():
        layer.base_layer.bias[0] = float("inf")
        layer.ia3_l[0] = 0.0  # inf * 0: the weight row stays finite, the bias is nan
    with pytest.raises(ValueError, match="the merged bias is not finite"):
        layer.merge()
    assert not layer.merged


def test_ia3_starts_at_the_base_and_keeps_its_scales_out_of_weight_decay(tiny_bert, tiny_batch):
    variant = build("ia3")
    model = variant.apply(tiny_bert(), DEFAULT)
    assert all(torch.equal(m.ia3_l, torch.ones_like(m.ia3_l)) for m in adapter_layers(model).values())
    assert_same_outputs(outputs(tiny_bert(), tiny_batch), outputs(model, tiny_batch), rtol=0, atol=0)
    decayed, exempt = variant.param_groups(model, 1e-3, 0.1)
    scales = {id(m.ia3_l) for m in adapter_layers(model).values()}
    assert scales <= {id(p) for p in exempt["params"]} and not scales & {id(p) for p in decayed["params"]}


def test_ia3_keeps_the_compute_dtype_under_autocast():
    for feedforward in (False, True):
        layer = ia3_layer(feedforward)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            x = torch.randn(2, 6)
            assert layer(x).dtype == layer.base_layer(x).dtype == torch.bfloat16


def test_ia3_saved_keys_and_a_config_peft_reads_without_warning(tmp_path, tiny_bert, tiny_batch):
    from peft import PeftConfig

    variant, model = trained(tiny_bert, tiny_batch, DEFAULT, "ia3")
    save_adapter_for_test(variant, model, tmp_path, "tiny-bert")
    saved = load_file(str(tmp_path / "adapter_model.safetensors"))
    assert saved[f"{PEFT_PREFIX}{LAYER}.attention.self.key.ia3_l"].shape == (32, 1)
    assert saved[f"{PEFT_PREFIX}{LAYER}.output.dense.ia3_l"].shape == (1, 64)
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert config["peft_type"] == "IA3" and config["feedforward_modules"] == ["output.dense"]
    assert "bias" not in config  # a LoRA field: peft's IA3Config has none
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = PeftConfig.from_pretrained(tmp_path)
    assert loaded.feedforward_modules == {"output.dense"} and loaded.target_modules == set(DEFAULT.modules)


@pytest.mark.parametrize("options", [{}, {"feedforward": ["intermediate.dense"]}])
def test_ia3_passes_the_kit_with_either_kind_of_layer(options):
    """The contract matrix runs the defaults; here intermediate.dense is the input-scaled layer instead."""
    targets = Targets(modules=["key", "value", "attention.output.dense", "intermediate.dense"])
    check_variant("ia3", options, targets=targets)


def test_peft_s_twin_trains_the_same_tensors_with_the_same_decay(tiny_bert):
    """The speed benchmark's peft IA3: our sizes, and its (out, 1) / (1, in) scales without decay."""
    variant = build("ia3")
    ours = variant.apply(perturb_biases_and_norms(tiny_bert()), DEFAULT)
    peft_twin = twin(variant)
    theirs = peft_twin.model(ours, tiny_bert())

    def groups(param_groups):
        return sorted((g["weight_decay"], sum(p.numel() for p in g["params"])) for g in param_groups)

    assert groups(peft_twin.optimizer(theirs, 1e-3, 0.1).param_groups) == groups(
        variant.param_groups(ours, 1e-3, 0.1)
    )
