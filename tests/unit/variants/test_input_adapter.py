"""The input-level kind of method: an InputAdapter attached by Variant.apply rewrites the model's inputs.

A toy prompt tuning (learned embeddings prepended to the sequence, as peft 0.21.2's PROMPT_TUNING does on
SEQ_CLS) written with the contract's hook alone, ``make_input_adapter``: it passes the test-kit (peft's
loader included) with nothing to merge and no output-at-init check, both by declaration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import nn

from bench.testing import CHECKS, run_check
from variants.base import Variant, VariantConfig, adapter_layers, added_tensors
from variants.input_adapter import InputAdapter, attach_input_adapter, input_adapters

N_TOKENS = 3


class Prompt(InputAdapter):
    def __init__(self, n_tokens: int, dim: int):
        super().__init__()
        self.prompt_embeddings = nn.Parameter(torch.randn(n_tokens, dim) * 0.1)

    def forward(self, model: nn.Module, inputs: dict[str, Any]) -> dict[str, Any]:
        inputs = dict(inputs)
        ids = inputs.pop("input_ids")
        n, batch = len(self.prompt_embeddings), ids.shape[0]
        embeds = model.get_input_embeddings()(ids)
        inputs["inputs_embeds"] = torch.cat((self.prompt_embeddings.expand(batch, -1, -1), embeds), dim=1)
        for key, fill in (("attention_mask", 1), ("token_type_ids", 0)):
            if inputs.get(key) is not None:
                prefix = torch.full((batch, n), fill, dtype=inputs[key].dtype, device=inputs[key].device)
                inputs[key] = torch.cat((prefix, inputs[key]), dim=1)
        return inputs

    def adapter_tensors(self) -> dict[str, torch.Tensor]:
        return {"prompt_embeddings": self.prompt_embeddings}


@dataclass
class ToyPromptConfig(VariantConfig):
    name: str = "toy_prompt"


class ToyPrompt(Variant):
    name = "toy_prompt"
    Config = ToyPromptConfig
    wraps = ()  # no make_layer: it wraps no module
    mergeable = False
    peft_type = "PROMPT_TUNING"
    peft_prefix = "base_model."  # peft holds the model itself for prompt learning
    check_options = {"init_atol": None}  # virtual tokens change the output from the start

    def make_input_adapter(self, model: nn.Module) -> Prompt:
        return Prompt(N_TOKENS, model.config.hidden_size)

    def peft_options(self, model: nn.Module) -> dict[str, Any]:
        c = model.config
        return {
            "num_virtual_tokens": N_TOKENS,
            "token_dim": c.hidden_size,
            "num_transformer_submodules": 1,
            "num_attention_heads": c.num_attention_heads,
            "num_layers": c.num_hidden_layers,
            "prompt_tuning_init": "RANDOM",
        }


@pytest.mark.parametrize("check", list(CHECKS))
def test_an_input_level_method_passes_the_kit(check):
    reason = run_check(ToyPrompt, check)
    if check.startswith(("merge", "unmerge")):
        assert reason == "ToyPrompt has nothing to merge (mergeable = False)"
    elif check == "output_at_init_equals_base":
        assert reason == "ToyPrompt starts away from the base model (init_atol None)"
    else:
        assert reason is None


def test_the_adapter_is_found_saved_and_counted(tiny_bert, tiny_batch, attention_targets):
    model = tiny_bert()
    variant = ToyPrompt()
    variant.apply(model, attention_targets)
    (adapter,) = input_adapters(model).values()
    assert model.input_adapter is adapter and adapter_layers(model) == {}
    assert sorted(variant.adapter_state_dict(model)) == [
        "base_model.classifier.bias",
        "base_model.classifier.weight",
        "prompt_embeddings",
    ]
    assert [t.shape for t in added_tensors(model)] == [(N_TOKENS, 32)]
    assert [n for n, p in model.named_parameters() if p.requires_grad] == [
        "classifier.weight",
        "classifier.bias",
        "input_adapter.prompt_embeddings",
    ]
    hidden = model(**tiny_batch, output_hidden_states=True).hidden_states[-1]
    assert hidden.shape[1] == tiny_batch["input_ids"].shape[1] + N_TOKENS  # the sequence grew


def test_positional_inputs_and_a_second_adapter_are_refused(tiny_bert, tiny_batch):
    model = tiny_bert()
    attach_input_adapter(model, Prompt(2, 32))
    with pytest.raises(TypeError, match="has an input adapter: call it with keyword inputs"):
        model(tiny_batch["input_ids"])
    with pytest.raises(ValueError, match="already has an input adapter"):
        attach_input_adapter(model, Prompt(2, 32))
