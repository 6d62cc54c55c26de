"""LoRA's layer: the scale (alpha / r, rsLoRA's alpha / sqrt(r)) and the initial distributions of A and B.
(Its outputs, dropout and merge against peft: tests/reference/test_peft_parity.py.)"""

from __future__ import annotations

import math

import pytest
import torch

from variants.lora import LoRALinear


def test_lora_scaling_rslora():
    linear = torch.nn.Linear(64, 64)
    assert LoRALinear(linear, 16, 8.0, 0.0, False, "kaiming").scaling == pytest.approx(0.5)
    assert LoRALinear(linear, 16, 8.0, 0.0, True, "kaiming").scaling == pytest.approx(2.0)


def test_lora_init_distributions():
    """kaiming-uniform(a=sqrt 5): A in +-1/sqrt(in); gaussian: A ~ N(0, 1/r); B = 0 either way."""
    torch.manual_seed(0)
    linear = torch.nn.Linear(512, 256)
    kaiming = LoRALinear(linear, 16, 16.0, 0.0, False, "kaiming")
    bound = 1 / math.sqrt(512)
    assert kaiming.lora_A.abs().max() <= bound
    assert kaiming.lora_A.abs().max() > 0.99 * bound
    assert kaiming.lora_A.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.03)
    gaussian = LoRALinear(linear, 16, 16.0, 0.0, False, "gaussian")
    assert gaussian.lora_A.std().item() == pytest.approx(1 / 16, rel=0.03)
    assert gaussian.lora_A.mean().abs().item() < 0.003
    assert not kaiming.lora_B.any() and not gaussian.lora_B.any()
