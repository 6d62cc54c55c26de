"""Models: the embedded MiniLM loads offline, presets resolve to real layers, every config states its
architecture (checked against the shipped MiniLM), random-init models of any shape, bad names fail clearly,
weights load from safetensors only."""

import json
from pathlib import Path

import pytest
import torch
from omegaconf import ListConfig
from torch import nn

from bench.config.schemas import BERT_TARGETS, ModelConfig
from bench.config.store import CONF_DIR
from bench.inputs.models import (
    ARCHITECTURE,
    TINY_VOCAB,
    load_model,
    load_tokenizer,
    minilm_path,
    model_config,
    random_init_model,
    resolve_targets,
    tiny_model,
)
from variants.base import matches

MINILM = model_config("minilm")
MODELS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))


@pytest.fixture(scope="module")
def minilm():
    return load_model(MINILM, num_labels=3)


def test_minilm_loads_offline_with_a_fresh_head(minilm):
    assert minilm.config.hidden_size == 384 and minilm.config.num_hidden_layers == 6
    assert minilm.classifier.out_features == 3
    assert 22_000_000 < sum(p.numel() for p in minilm.parameters()) < 23_000_000
    tok = load_tokenizer(MINILM)
    assert tok.tokenize("hello world") == ["hello", "world"]


def test_minilm_architecture_is_the_shipped_config_json():
    shipped = json.loads((Path(minilm_path()) / "config.json").read_text())
    assert (MINILM.family, MINILM.vocab_size, MINILM.hidden_size) == (
        shipped["model_type"],
        shipped["vocab_size"],
        shipped["hidden_size"],
    )
    assert (MINILM.num_layers, MINILM.num_heads, MINILM.intermediate_size) == (
        shipped["num_hidden_layers"],
        shipped["num_attention_heads"],
        shipped["intermediate_size"],
    )


@pytest.mark.parametrize("name", MODELS)
def test_every_model_states_its_architecture(name):
    cfg = model_config(name)
    assert all(isinstance(getattr(cfg, k), int) for k in ARCHITECTURE if k != "family")
    assert cfg.family in ("bert", "roberta", "deberta-v2")
    assert cfg.hidden_size % cfg.num_heads == 0


def test_tiny_vocab_size_is_the_character_tokenizer():
    assert model_config("tiny").vocab_size == len(TINY_VOCAB) == len(load_tokenizer(model_config("tiny")))


def test_model_config_unknown_name_lists_the_models():
    with pytest.raises(ValueError, match="unknown model 'robrta'; available: bert_base, deberta_v3_base"):
        model_config("robrta")


@pytest.mark.parametrize("name", ["tiny", "roberta_base"])
def test_random_init_model_has_the_configured_shape(name):
    cfg = model_config(name)
    if name != "tiny":  # a base-size shape, shrunk in depth to stay fast; widths as configured
        cfg = ModelConfig(**{**vars(cfg), "num_layers": 1, "max_length": 16})
    model = random_init_model(cfg, num_labels=3, seed=0)
    c = model.config
    assert (c.model_type, c.vocab_size, c.hidden_size, c.num_hidden_layers) == (
        cfg.family,
        cfg.vocab_size,
        cfg.hidden_size,
        cfg.num_layers,
    )
    heads = (c.num_attention_heads, c.intermediate_size, c.num_labels)
    assert heads == (cfg.num_heads, cfg.intermediate_size, 3)
    assert c.max_position_embeddings == cfg.max_length + (2 if cfg.family == "roberta" else 0)


def test_random_init_model_errors():
    with pytest.raises(ValueError, match="does not state its architecture: family, vocab_size"):
        random_init_model(ModelConfig(name="x"), 2)
    deberta = model_config("deberta_v3_base")
    with pytest.raises(ValueError, match="no random init for family 'deberta-v2'; choose bert, roberta"):
        random_init_model(deberta, 2)


@pytest.mark.parametrize(("preset", "per_layer"), [("attention", 2), ("attention_all", 4), ("all_linear", 6)])
def test_target_presets_match_the_right_linears(minilm, preset, per_layer):
    targets = resolve_targets(MINILM, preset)
    names = [n for n, m in minilm.named_modules() if isinstance(m, nn.Linear) and matches(n, targets.modules)]
    assert len(names) == 6 * per_layer
    assert not any(n.startswith(("classifier", "bert.pooler")) for n in names)


def test_explicit_target_list():
    assert resolve_targets(MINILM, "query, key").modules == ["query", "key"]
    assert resolve_targets(MINILM, ["query", "key"]).modules == ["query", "key"]
    assert resolve_targets(MINILM, ListConfig(["key", "value"])).modules == ["key", "value"]
    assert resolve_targets(MINILM, "attention").modules == BERT_TARGETS["attention"]
    assert resolve_targets(MINILM, "attention").head == ["classifier"]


def test_bad_targets_fail():
    with pytest.raises(ValueError, match="empty variant.targets; use a preset of model 'minilm'"):
        resolve_targets(MINILM, " , ")
    with pytest.raises(ValueError, match="attention, attention_all, all_linear"):
        resolve_targets(MINILM, [])
    with pytest.raises(ValueError, match=r"variant.targets 3 \(int\) is not a preset of model 'minilm'"):
        resolve_targets(MINILM, 3)
    with pytest.raises(ValueError, match=r"variant.targets \['key', 1\] holds a non-string"):
        resolve_targets(MINILM, ["key", 1])


def test_tiny_model_is_seeded():
    tiny = model_config("tiny")
    a, b = load_model(tiny, 2, seed=1), load_model(tiny, 2, seed=1)
    assert all((p == q).all() for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_tiny_model_takes_the_tiny_shape_and_the_fields_a_config_sets():
    model = tiny_model(ModelConfig(name="tiny", source="tiny", hidden_size=64, intermediate_size=128), 2)
    tiny = model_config("tiny")
    assert (model.config.hidden_size, model.config.intermediate_size) == (64, 128)
    assert (model.config.num_hidden_layers, model.config.vocab_size) == (tiny.num_layers, tiny.vocab_size)


def test_unknown_source_and_missing_hub_id():
    with pytest.raises(ValueError, match="unknown model source 'hubb'; choose one of minilm, tiny, hub"):
        load_model(ModelConfig(name="x", source="hubb"), 2)
    with pytest.raises(ValueError, match="no `pretrained`"):
        load_model(ModelConfig(name="x", source="hub"), 2)


def test_weights_load_from_safetensors_only_never_from_a_pickle(tiny_bert, tmp_path):
    model = tiny_bert()
    model.save_pretrained(tmp_path / "safe")  # transformers writes model.safetensors
    loaded = load_model(ModelConfig(name="mine", source="hub", pretrained=str(tmp_path / "safe")), 2)
    embeddings = (m.bert.embeddings.word_embeddings.weight for m in (loaded, model))
    assert torch.equal(*embeddings)
    pickled = tmp_path / "pickled"
    model.config.save_pretrained(pickled)
    torch.save(model.state_dict(), pickled / "pytorch_model.bin")  # what loading would unpickle
    refused = rf"^model 'mine' \({pickled}\) has no safetensors weights .* never a pickle"
    with pytest.raises(OSError, match=refused):
        load_model(ModelConfig(name="mine", source="hub", pretrained=str(pickled)), 2)
