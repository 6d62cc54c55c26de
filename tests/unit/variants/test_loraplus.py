"""LoRA+'s optimizer groups by role (B and 1-D tensors at lr x ratio), the step they make, its adapter saved
as LoRA. (Its groups against peft's create_loraplus_optimizer and its outputs against peft's LoRA:
tests/reference/test_peft_parity.py.)"""

from __future__ import annotations

import json

import pytest
import torch
from helpers.peft_reference import live_by_key, named_groups, save_adapter_for_test, trained

from variants import build
from variants.base import Targets, adapter_layers

LR, WD, RATIO = 1e-3, 0.01, 16.0


@pytest.mark.parametrize("modules", [["query", "value"], ["query", "key", "value", "intermediate.dense"]])
def test_loraplus_groups_by_role(modules, tiny_bert):
    targets = Targets(modules=modules, head=["classifier"])
    variant = build("loraplus", {"r": 4, "alpha": 8.0, "loraplus_lr_ratio": RATIO})
    model = variant.apply(tiny_bert(), targets)
    ours = named_groups(variant.param_groups(model, LR, WD), live_by_key(model))
    by_name = {name: (lr, wd) for group, lr, wd in ours for name in group}
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert sorted(by_name) == sorted(live_by_key(model))
    assert sum(len(g) for g, _, _ in ours) == len(trainable) == len(by_name)
    for name, (lr, wd) in by_name.items():
        if ".lora_B." in name:
            assert (lr, wd) == (LR * RATIO, WD)
        elif name.endswith("classifier.bias"):
            assert (lr, wd) == (LR * RATIO, 0.0)
        else:  # lora_A, classifier.weight
            assert (lr, wd) == (LR, WD)


def test_loraplus_ratio_moves_b_faster(tiny_bert, tiny_batch, attention_targets):
    """Adam's first step is lr * sign(grad) (eps ~ 0): B moves by lr * ratio, A by lr."""
    variant = build("loraplus", {"r": 4, "alpha": 8.0, "loraplus_lr_ratio": RATIO})
    model = variant.apply(tiny_bert(), attention_targets)
    layer = next(iter(adapter_layers(model).values()))
    torch.nn.init.normal_(layer.lora_B)  # B = 0 would leave A without a gradient
    opt = torch.optim.AdamW(variant.param_groups(model, LR, 0.0), eps=1e-30)
    model(**tiny_batch, labels=torch.tensor([0, 1, 1, 0])).loss.backward()
    a_before, b_before = layer.lora_A.detach().clone(), layer.lora_B.detach().clone()
    opt.step()
    step_b = (layer.lora_B.detach() - b_before).abs().max().item()
    step_a = (layer.lora_A.detach() - a_before).abs().max().item()
    assert step_b == pytest.approx(LR * RATIO, rel=1e-3)
    assert step_a == pytest.approx(LR, rel=1e-3)


def test_loraplus_saves_as_lora(tmp_path, tiny_bert, tiny_batch, attention_targets):
    """A LoRA adapter (peft loads it as one: the parity matrix's loraplus-default outputs)."""
    variant, model = trained(tiny_bert, tiny_batch, attention_targets, "loraplus", r=4, alpha=8.0)
    save_adapter_for_test(variant, model, tmp_path / "saved", "tiny-bert")
    config = json.loads((tmp_path / "saved" / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["use_dora"] is False


def test_loraplus_rejects_bad_ratio(tiny_bert, attention_targets):
    variant = build("loraplus", {"loraplus_lr_ratio": 0.0})
    model = variant.apply(tiny_bert(), attention_targets)
    with pytest.raises(ValueError, match="loraplus_lr_ratio=0.0"):
        variant.param_groups(model, LR, WD)
