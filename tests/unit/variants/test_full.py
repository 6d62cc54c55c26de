"""The full fine-tuning baseline: every parameter trains, no layer is wrapped, the adapter holds them all."""

from __future__ import annotations

import torch

import variants
from variants.base import PEFT_PREFIX, adapter_layers


def test_every_parameter_trains_and_no_layer_is_wrapped(tiny_bert, attention_targets):
    model = tiny_bert()
    names = [n for n, _ in model.named_parameters()]
    variants.build("full").apply(model, attention_targets)
    assert adapter_layers(model) == {}
    assert [n for n, p in model.named_parameters() if p.requires_grad] == names


def test_the_adapter_holds_every_parameter_under_peft_names(tiny_bert, attention_targets):
    model = tiny_bert()
    full = variants.build("full")
    full.apply(model, attention_targets)
    saved = full.adapter_state_dict(model)
    assert list(saved) == [PEFT_PREFIX + n for n, _ in model.named_parameters()]
    other = tiny_bert(seed=1)
    full.load_adapter_state_dict(other, saved)
    for (name, a), b in zip(model.state_dict().items(), other.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
