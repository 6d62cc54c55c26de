"""Prompt tuning: the input adapter that puts the virtual tokens in front of the input (masks, token types,
positions), the random and text inits (text: equal to peft's TEXT), what trains, the saved keys and config,
one backward against peft's, nothing to merge, and the options refused. (Outputs and train mode against
peft's PROMPT_TUNING, in memory and loaded from disk: tests/reference/test_peft_parity.py.)"""

from __future__ import annotations

import copy
import json

import pytest
import torch
from helpers.peft_reference import save_adapter_for_test, trained
from peft import PromptTuningConfig as PeftPromptTuningConfig
from peft import get_peft_model, set_peft_model_state_dict

import variants
from bench.inputs.models import tiny_tokenizer
from bench.testing import perturb_biases_and_norms
from variants import build
from variants.base import Targets, adapter_layers, added_tensors
from variants.input_adapter import input_adapters
from variants.prompt_tuning import PROMPT_KEY, PromptTuning, text_token_ids

HEAD = Targets(modules=["query"], head=["classifier"])  # the modules are unused: no layer is adapted


def test_prompt_tuning_is_registered_with_peft_s_defaults(compose):
    assert variants.get("prompt_tuning") is PromptTuning
    cfg = compose(["variant=prompt_tuning", "model=tiny"]).variant
    assert (cfg.lr, cfg.num_virtual_tokens, cfg.init, cfg.init_text) == (3e-2, 20, "random", None)


def test_only_the_prompt_and_the_head_train_and_no_layer_is_wrapped(tiny_bert):
    model = build("prompt_tuning").apply(tiny_bert(), HEAD)
    assert not adapter_layers(model)
    trainable = {n: p.numel() for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {  # counted by hand: 20 tokens x hidden 32, the 32 -> 2 head
        "classifier.weight": 64,
        "classifier.bias": 2,
        "input_adapter.embedding.weight": 20 * 32,
    }


def test_random_init_is_a_fresh_standard_normal_embedding(tiny_bert):
    torch.manual_seed(3)
    model = build("prompt_tuning", {"num_virtual_tokens": 4}).apply(tiny_bert(), HEAD)
    torch.manual_seed(3)
    assert torch.equal(model.input_adapter.embedding.weight, torch.randn(4, 32))


def captured_call(model, **inputs) -> dict:
    """The keyword arguments the model's forward receives after the prompt's pre-hook."""
    seen = {}
    model.register_forward_pre_hook(lambda m, a, kw: seen.update(kw), with_kwargs=True)
    with torch.no_grad():
        model(**inputs)
    return seen


def test_the_hook_puts_the_prompt_in_front_of_the_words_and_extends_the_masks(tiny_bert, tiny_batch):
    model = build("prompt_tuning", {"num_virtual_tokens": 3}).apply(tiny_bert(), HEAD)
    seen = captured_call(model, **tiny_batch)
    batch, length = tiny_batch["input_ids"].shape
    embeds = seen["inputs_embeds"]
    assert "input_ids" not in seen and embeds.shape == (batch, 3 + length, 32)
    prompt = model.input_adapter.embedding.weight
    assert torch.equal(embeds[:, :3], prompt.expand(batch, -1, -1))
    assert torch.equal(embeds[:, 3:], model.get_input_embeddings()(tiny_batch["input_ids"]))
    mask, types = seen["attention_mask"], seen["token_type_ids"]
    assert torch.equal(mask[:, :3], torch.ones(batch, 3))
    assert torch.equal(mask[:, 3:].long(), tiny_batch["attention_mask"])
    zeros = torch.zeros(batch, 3, dtype=torch.long)
    assert torch.equal(types, torch.cat((zeros, tiny_batch["token_type_ids"]), 1))


def test_inputs_embeds_are_extended_too_and_positional_inputs_refused(tiny_bert, tiny_batch):
    model = build("prompt_tuning", {"num_virtual_tokens": 2}).apply(tiny_bert(), HEAD)
    ids = tiny_batch["input_ids"]
    with torch.no_grad():
        by_keyword = model(input_ids=ids).logits
        embeds = model.get_input_embeddings()(ids)
        assert torch.equal(model(inputs_embeds=embeds).logits, by_keyword)
        with pytest.raises(TypeError, match="has an input adapter: call it with keyword inputs"):
            model(ids)


def test_the_prompt_is_an_input_adapter_counted_as_added_tensors(tiny_bert):
    variant = build("prompt_tuning", {"num_virtual_tokens": 3})
    model = variant.apply(tiny_bert(), HEAD)
    assert list(input_adapters(model)) == ["input_adapter"]
    assert [t.shape for t in added_tensors(model)] == [(3, 32)]
    assert variant.added_tokens() == 3 and build("lora").added_tokens() == 0


def test_position_ids_are_dropped_with_a_notice_as_peft_does(tiny_bert, tiny_batch, caplog):
    model = build("prompt_tuning", {"num_virtual_tokens": 2}).apply(tiny_bert(), HEAD)
    positions = torch.arange(tiny_batch["input_ids"].shape[1]).expand_as(tiny_batch["input_ids"])
    with torch.no_grad():
        assert torch.equal(model(**tiny_batch, position_ids=positions).logits, model(**tiny_batch).logits)
    assert "ignores position_ids" in caplog.text


def test_an_input_the_positions_cannot_hold_names_both_settings(tiny_bert):
    model = build("prompt_tuning").apply(tiny_bert(), HEAD)
    ids = torch.ones(1, 50, dtype=torch.long)  # the tiny model has 64 positions: 50 + 20 exceed them
    with pytest.raises(ValueError, match=r"50 tokens \+ num_virtual_tokens=20 exceed the model's 64 "):
        model(input_ids=ids)


def test_text_token_ids_are_cut_or_repeated_to_the_prompt_length():
    tok = tiny_tokenizer()
    ids = tok("ab")["input_ids"]  # [CLS] a ##b [SEP]
    assert len(ids) == 4
    assert text_token_ids(tok, "ab", 2) == ids[:2]
    assert text_token_ids(tok, "ab", 6) == ids + ids[:2]


def test_text_init_equals_peft_s(tiny_bert, tmp_path):
    tiny_tokenizer().save_pretrained(tmp_path)
    text = "classify the review"
    options = {"num_virtual_tokens": 7, "init": "text", "init_text": text, "tokenizer": str(tmp_path)}
    ours = build("prompt_tuning", options)
    model = ours.apply(tiny_bert(), HEAD)
    config = PeftPromptTuningConfig(
        task_type="SEQ_CLS",
        num_virtual_tokens=7,
        prompt_tuning_init="TEXT",
        prompt_tuning_init_text=text,
        tokenizer_name_or_path=str(tmp_path),
    )
    theirs = get_peft_model(tiny_bert(), config).prompt_encoder["default"].embedding.weight
    assert torch.equal(model.input_adapter.embedding.weight, theirs)
    saved = ours.adapter_config(model, "tiny-bert")
    assert (saved["prompt_tuning_init"], saved["prompt_tuning_init_text"]) == ("TEXT", text)
    assert saved["tokenizer_name_or_path"] == str(tmp_path)


def test_the_adapter_holds_peft_s_keys_and_config_fields(tiny_bert, tiny_batch, tmp_path):
    variant, model = trained(tiny_bert, tiny_batch, HEAD, "prompt_tuning", num_virtual_tokens=5)
    assert set(variant.adapter_state_dict(model)) == {
        PROMPT_KEY,
        "base_model.classifier.weight",
        "base_model.classifier.bias",
    }
    save_adapter_for_test(variant, model, tmp_path, "tiny-bert")
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert (config["peft_type"], config["num_virtual_tokens"]) == ("PROMPT_TUNING", 5)
    assert config["token_dim"] == 32
    assert not {"target_modules", "bias", "fan_in_fan_out"} & set(config)  # LoRA's fields, not peft's here
    assert (config["prompt_tuning_init"], config["tokenizer_name_or_path"]) == ("RANDOM", None)


def test_one_backward_gives_peft_s_gradients(tiny_bert, tiny_batch):
    def start():
        return perturb_biases_and_norms(tiny_bert())

    variant, model = trained(start, tiny_batch, HEAD, "prompt_tuning", num_virtual_tokens=4)
    twin = get_peft_model(start(), PeftPromptTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=4))
    set_peft_model_state_dict(twin, variant.adapter_state_dict(model))
    labels = torch.tensor([0, 1, 1, 0])
    for m in (model.eval(), twin.eval()):
        m(**tiny_batch, labels=labels).loss.backward()
    pairs = [
        (model.input_adapter.embedding.weight, twin.prompt_encoder["default"].embedding.weight),
        (model.classifier.weight, twin.base_model.classifier.modules_to_save["default"].weight),
    ]
    for ours, theirs in pairs:
        assert ours.grad.abs().max() > 0
        torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-5, atol=1e-7)


def test_nothing_to_merge_and_a_copy_keeps_its_own_prompt(tiny_bert, tiny_batch):
    variant, model = trained(tiny_bert, tiny_batch, HEAD, "prompt_tuning", num_virtual_tokens=4)
    with torch.no_grad():
        before = model(**tiny_batch).logits
        variant.merge(model)
        variant.unmerge(model)
        assert torch.equal(model(**tiny_batch).logits, before)
        twin = copy.deepcopy(model)
        twin.input_adapter.embedding.weight.add_(1.0)
        assert torch.equal(model(**tiny_batch).logits, before)  # the copy's hook reads the copy's prompt
        assert not torch.equal(twin(**tiny_batch).logits, before)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"init": "vocab"}, r"init='vocab' is not valid; choose one of random, text"),
        ({"num_virtual_tokens": 0}, r"num_virtual_tokens=0 must be at least 1"),
        ({"init": "text"}, r"init=text needs init_text"),
        ({"init": "text", "init_text": "hi"}, r"names no tokenizer; set tokenizer"),
    ],
)
def test_bad_options_are_refused_by_name(tiny_bert, options, message):
    with pytest.raises(ValueError, match=message):
        build("prompt_tuning", options).apply(tiny_bert(), HEAD)
