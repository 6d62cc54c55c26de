"""Models: the embedded MiniLM loads offline, presets resolve to real layers, bad names fail clearly."""

import pytest
from torch import nn

from bench.models import BERT_TARGETS, ModelConfig, load_model, load_tokenizer, resolve_targets
from variants.base import matches

MINILM = ModelConfig(name="minilm", source="minilm")


@pytest.fixture(scope="module")
def minilm():
    return load_model(MINILM, num_labels=3)


def test_minilm_loads_offline_with_a_fresh_head(minilm):
    assert minilm.config.hidden_size == 384 and minilm.config.num_hidden_layers == 6
    assert minilm.classifier.out_features == 3
    assert 22_000_000 < sum(p.numel() for p in minilm.parameters()) < 23_000_000
    tok = load_tokenizer(MINILM)
    assert tok.tokenize("hello world") == ["hello", "world"]


@pytest.mark.parametrize(("preset", "per_layer"), [("attention", 2), ("attention_all", 4), ("all_linear", 6)])
def test_target_presets_match_the_right_linears(minilm, preset, per_layer):
    targets = resolve_targets(MINILM, preset)
    names = [n for n, m in minilm.named_modules() if isinstance(m, nn.Linear) and matches(n, targets.modules)]
    assert len(names) == 6 * per_layer
    assert not any(n.startswith(("classifier", "bert.pooler")) for n in names)


def test_explicit_target_list():
    assert resolve_targets(MINILM, "query, key").modules == ["query", "key"]
    assert resolve_targets(MINILM, "attention").modules == BERT_TARGETS["attention"]
    assert resolve_targets(MINILM, "attention").head == ["classifier"]


def test_empty_targets_fail():
    with pytest.raises(ValueError, match="attention, attention_all, all_linear"):
        resolve_targets(MINILM, " , ")


def test_tiny_model_is_seeded():
    tiny = ModelConfig(name="tiny", source="tiny")
    a, b = load_model(tiny, 2, seed=1), load_model(tiny, 2, seed=1)
    assert all((p == q).all() for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_unknown_source_and_missing_hub_id():
    with pytest.raises(ValueError, match="unknown model source 'hubb'; choose one of minilm, tiny, hub"):
        load_model(ModelConfig(name="x", source="hubb"), 2)
    with pytest.raises(ValueError, match="no `pretrained`"):
        load_model(ModelConfig(name="x", source="hub"), 2)
