"""Our LoRA against Hugging Face peft (a test reference only) on identical weights.

Two ways: (1) a peft model built on an identical base with our trained tensors loaded into it, and
(2) our adapter saved to disk and loaded with ``peft.PeftModel.from_pretrained``. The helpers are in
helpers/peft_reference.py, shared with the DoRA, VeRA and LoRA+ reference tests.
"""

from __future__ import annotations

import math

import pytest
import torch
from helpers.peft_reference import (
    ATOL,
    RTOL,
    assert_matches_peft,
    assert_same_outputs,
    lora_config,
    peft_twin,
    train_mode_outputs,
    trained,
)

from variants.lora import LoRALinear

CASES = {
    "default": ({"r": 4, "alpha": 8.0}, {"r": 4, "lora_alpha": 8}),
    "rslora": ({"r": 4, "alpha": 8.0, "use_rslora": True}, {"r": 4, "lora_alpha": 8, "use_rslora": True}),
    "gaussian": (
        {"r": 4, "alpha": 4.0, "init": "gaussian"},
        {"r": 4, "lora_alpha": 4, "init_lora_weights": "gaussian"},
    ),
    "dropout": ({"r": 8, "alpha": 16.0, "dropout": 0.1}, {"r": 8, "lora_alpha": 16, "lora_dropout": 0.1}),
}


@pytest.mark.parametrize("case", CASES)
def test_lora_logits_equal_peft(case, tmp_path, tiny_bert, tiny_batch, attention_targets):
    ours, theirs = CASES[case]
    variant, model = trained(tiny_bert, tiny_batch, attention_targets, "lora", **ours)
    assert_matches_peft(
        tmp_path, tiny_bert, tiny_batch, variant, model, lora_config(attention_targets, **theirs)
    )


def test_lora_dropout_in_training_equals_peft(tiny_bert, tiny_batch, attention_targets):
    """Same seed, same dropout masks: the train-mode outputs agree, so dropout sits where peft puts it."""
    variant, model = trained(tiny_bert, tiny_batch, attention_targets, "lora", r=4, alpha=8.0, dropout=0.3)
    twin = peft_twin(
        tiny_bert(), lora_config(attention_targets, r=4, lora_alpha=8, lora_dropout=0.3), variant, model
    )
    assert_same_outputs(*train_mode_outputs([model, twin], tiny_batch, seed=7))


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


def test_lora_merge_equals_peft_merge(tiny_bert, tiny_batch, attention_targets):
    variant, model = trained(tiny_bert, tiny_batch, attention_targets, "lora", r=4, alpha=8.0)
    twin = peft_twin(tiny_bert(), lora_config(attention_targets, r=4, lora_alpha=8), variant, model)
    variant.merge(model)
    merged = twin.merge_and_unload()
    for name in ("query", "value"):
        ours = model.bert.encoder.layer[1].attention.self.get_submodule(name).base_layer.weight
        theirs = merged.bert.encoder.layer[1].attention.self.get_submodule(name).weight
        torch.testing.assert_close(ours, theirs, rtol=RTOL, atol=ATOL)
