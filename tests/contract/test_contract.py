"""The contract matrix: every registered variant x every named check of bench.testing, on the tiny model.

Per-variant settings come from each variant class's ``check_options`` (so a plugin joins with no edit
here), never from branches of the generic checks; a check a variant's declarations rule out (merge checks
without anything to merge, peft's loader without a peft_type) is skipped with the reason.
"""

import pytest
from helpers.ia3 import IA3, IA3Linear

import variants
from bench.testing import CHECKS, check_variant, run_check, subject
from variants.base import adapter_layers, no_decay_params


@pytest.mark.parametrize("check", list(CHECKS))
@pytest.mark.parametrize("name", variants.available())
def test_variant_contract(name, check):
    reason = run_check(name, check)  # a check the variant's declarations rule out is skipped, saying why
    if reason:
        pytest.skip(reason)


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


# -- an outside method whose bias bug zero-init biases hide: helpers/ia3.py ---------------------------
class IA3ForgetsTheBias(IA3):
    """The bug: merging scales W but not b, so merged != unmerged wherever b != 0."""

    def make_layer(self, name, linear):
        return IA3Linear(linear, scales_bias=False)


def test_a_method_that_scales_the_bias_merges_exactly():
    check_variant(IA3)


def test_the_kit_catches_a_bias_bug_that_zero_biases_hid():
    # With the tiny model's zero-init biases (perturb_base=False) the bug passes ...
    check_variant(IA3ForgetsTheBias, perturb_base=False)
    # ... randomised biases and norms catch it.
    with pytest.raises(AssertionError, match="merged forward vs unmerged forward"):
        check_variant(IA3ForgetsTheBias)


def test_the_kit_adapts_the_variants_own_targets():
    s = subject(IA3)
    _, model = s.build()
    layers = adapter_layers(model)
    assert sorted({name.rsplit(".", 1)[-1] for name in layers}) == ["dense", "key", "query", "value"]
    assert len(layers) == 2 * 4  # q, k, v and attention.output.dense of both layers


def test_weight_decay_follows_what_a_tensor_is():
    """IA3's (out, 1) vector is 2-D, yet it is a scale starting at 1: never decayed towards 0."""
    variant, model = subject(IA3).build()
    decayed, exempt = variant.param_groups(model, 1e-3, 0.1)
    assert exempt["weight_decay"] == 0.0 and decayed["weight_decay"] == 0.1
    scales = {id(m.ia3_l) for m in adapter_layers(model).values()}
    assert scales <= {id(p) for p in exempt["params"]}
    assert {id(model.classifier.bias)} <= no_decay_params(model)
    assert [id(model.classifier.weight)] == [id(p) for p in decayed["params"]]
