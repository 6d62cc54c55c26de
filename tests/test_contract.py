"""The contract matrix: every registered variant x every named check of bench.testing, on the tiny model.

Per-variant settings come from each variant class's ``check_options`` (so a plugin joins with no edit
here), never from branches of the generic checks.
"""

from dataclasses import dataclass

import pytest
import torch
from torch import nn

import variants
from bench.testing import CHECKS, check_variant, run_check, subject
from variants.base import AdapterLayer, Variant, VariantConfig, no_decay_params


@pytest.mark.parametrize("check", list(CHECKS))
@pytest.mark.parametrize("name", variants.available())
def test_variant_contract(name, check):
    run_check(name, check)


def test_check_variant_catches_a_broken_variant():
    """The kit must fail a variant whose adapter changes the output at initialisation."""
    from variants.lora import LoRA

    class Broken(LoRA):
        name = "broken_lora"

        def make_layer(self, name, linear):
            layer = super().make_layer(name, linear)
            layer.lora_B.data.fill_(0.5)  # B != 0: the output at init is no longer the base's
            return layer

    with pytest.raises(AssertionError, match="output at initialisation"):
        check_variant(Broken)


# -- an outside method the old kit could not judge: IA3 (Liu et al., 2022, arXiv:2205.05638) ---------
@dataclass
class IA3Config(VariantConfig):
    name: str = "ia3_test"
    lr: float = 1e-2
    targets: object = "attention_all"


class IA3Linear(AdapterLayer):
    """h = l * (W x + b), l (out, 1) starting at 1, as peft's IA3 on a non-feed-forward layer."""

    decay_exempt = frozenset({"ia3_l"})

    def __init__(self, base_layer: nn.Linear, scales_bias: bool = True):
        super().__init__(base_layer)
        self.scales_bias = scales_bias
        self.ia3_l = nn.Parameter(torch.ones(self.out_features, 1))

    def forward(self, x):
        out = self.base_layer(x)
        return out if self.merged else out * self.ia3_l.view(-1)

    def delta_weight(self):
        return (self.ia3_l - 1) * self.base_weight()

    def delta_bias(self):
        return (self.ia3_l.view(-1) - 1) * self.base_layer.bias if self.scales_bias else None

    def adapter_tensors(self):
        return {"ia3_l": self.ia3_l}


class IA3(Variant):
    name = "ia3_test"
    Config = IA3Config

    def make_layer(self, name, linear):
        return IA3Linear(linear)


class IA3ForgetsTheBias(IA3):
    """The bug: merging scales W but not b, so merged != unmerged wherever b != 0."""

    def make_layer(self, name, linear):
        return IA3Linear(linear, scales_bias=False)


def test_a_method_that_scales_the_bias_merges_exactly():
    check_variant(IA3)


def test_the_kit_catches_a_bias_bug_that_zero_biases_hid():
    # The old kit's conditions (the tiny model's zero-init biases) pass the bug ...
    check_variant(IA3ForgetsTheBias, perturb_base=False)
    # ... randomised biases and norms catch it.
    with pytest.raises(AssertionError, match="merged forward vs unmerged forward"):
        check_variant(IA3ForgetsTheBias)


def test_the_kit_adapts_the_variants_own_targets():
    s = subject(IA3)
    variant, model = s.build()
    assert sorted({name.rsplit(".", 1)[-1] for name in variant.layers}) == ["dense", "key", "query", "value"]
    assert len(variant.layers) == 2 * 4  # q, k, v and attention.output.dense of both layers


def test_weight_decay_follows_what_a_tensor_is():
    """IA3's (out, 1) vector is 2-D, yet it is a scale starting at 1: never decayed towards 0."""
    variant, model = subject(IA3).build()
    decayed, exempt = variant.param_groups(model, 1e-3, 0.1)
    assert exempt["weight_decay"] == 0.0 and decayed["weight_decay"] == 0.1
    scales = {id(m.ia3_l) for m in variant.layers.values()}
    assert scales <= {id(p) for p in exempt["params"]}
    assert {id(model.classifier.bias)} <= no_decay_params(model)
    assert [id(model.classifier.weight)] == [id(p) for p in decayed["params"]]
