"""The contract matrix: every registered variant passes bench.testing.check_variant on the tiny model.

Per-variant settings live in MATRIX (options, tolerances), not in branches of the generic check.
"""

import pytest

import variants
from bench.testing import check_variant

MATRIX = {
    # A quantized base differs from the fp32 base by the NF4 rounding error at initialisation; the
    # recipe's r=64 is wider than the tiny model (32).
    "qlora": {"options": {"r": 8}, "init_atol": 5e-2},
    "adalora": {"options": {"tinit": 0, "tfinal": 1}},
}


@pytest.mark.parametrize("name", variants.available())
def test_variant_contract(name):
    check_variant(name, **MATRIX.get(name, {}))


def test_check_variant_catches_a_broken_variant():
    """The kit must fail a variant whose adapter changes the output at initialisation."""
    from variants.lora import LoRA, LoRAConfig

    class Broken(LoRA):
        name = "broken_lora"

        def make_layer(self, name, linear):
            layer = super().make_layer(name, linear)
            layer.lora_B.data.fill_(0.5)  # B != 0: the output at init is no longer the base's
            return layer

    with pytest.raises(AssertionError, match="output at initialisation"):
        check_variant(Broken)
    assert LoRAConfig().r == 8
