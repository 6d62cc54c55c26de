"""The head-only baseline: the encoder frozen, only the classifier head trains and is saved."""

from __future__ import annotations

import variants
from variants.base import PEFT_PREFIX, adapter_layers


def test_only_the_head_trains(tiny_bert, attention_targets):
    model = tiny_bert()
    variants.build("head").apply(model, attention_targets)
    assert adapter_layers(model) == {}
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["classifier.weight", "classifier.bias"]


def test_the_adapter_holds_the_head_only(tiny_bert, attention_targets):
    model = tiny_bert()
    head = variants.build("head")
    head.apply(model, attention_targets)
    assert sorted(head.adapter_state_dict(model)) == [
        PEFT_PREFIX + "classifier.bias",
        PEFT_PREFIX + "classifier.weight",
    ]
