"""A run's adapter files (bench.results.adapter_files): the tensors and the config, as peft reads them, and
the fingerprint of the base weights they were trained on (base_model.json), checked on loading."""

import json
import os

import pytest
import torch
from helpers.notices import notices
from safetensors.torch import load_file

from bench.results.adapter_files import BASE_MODEL, base_fingerprint, base_record, check_base, save_adapter


def test_save_adapter_writes_the_tensors_and_the_config_and_returns_the_weights_size(tmp_path):
    state = {"a.lora_A": torch.arange(6.0).reshape(2, 3).t(), "a.lora_B": torch.ones(2, requires_grad=True)}
    config = {"peft_type": "LORA", "r": 2}
    size = save_adapter(tmp_path / "adapter", state, config)
    weights = tmp_path / "adapter" / "adapter_model.safetensors"
    assert size == weights.stat().st_size > 0
    loaded = load_file(weights)
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state)
    assert json.loads((tmp_path / "adapter" / "adapter_config.json").read_text()) == config


def test_save_adapter_without_a_config_writes_the_weights_only(tmp_path):
    save_adapter(tmp_path, {"w": torch.zeros(1)}, None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter_model.safetensors"]


def test_the_base_fingerprint_covers_every_weight_but_the_head(tiny_bert):
    base = tiny_bert()
    fp = base_fingerprint(base, ["classifier"])
    assert len(fp) == 64 and fp == base_fingerprint(tiny_bert(), ["classifier"])  # the same weights
    with torch.no_grad():
        base.classifier.weight.add_(1.0)
    assert base_fingerprint(base, ["classifier"]) == fp  # the head is trained and saved with the adapter
    with torch.no_grad():
        base.bert.encoder.layer[1].attention.self.value.weight[0, 0] += 1e-3
    assert base_fingerprint(base, ["classifier"]) != fp
    assert base_fingerprint(tiny_bert(seed=1), ["classifier"]) != fp  # same shapes, other weights


def test_base_model_json_sits_beside_peft_files_and_checks_the_base(tmp_path, caplog):
    fp, other = "a" * 64, "b" * 64
    save_adapter(tmp_path, {"w": torch.zeros(1)}, {"r": 2}, base_record("tiny-bert", fp, ["classifier"]))
    assert json.loads((tmp_path / BASE_MODEL).read_text()) == {
        "name_or_path": "tiny-bert",
        "sha256": fp,
        "head_left_out": ["classifier"],
    }
    assert json.loads((tmp_path / "adapter_config.json").read_text()) == {"r": 2}  # as peft reads it
    check_base(tmp_path, fp)
    assert notices(caplog) == ""
    with pytest.raises(
        ValueError, match=rf"trained on base weights {'a' * 16} \(tiny-bert\).* has {'b' * 16}"
    ):
        check_base(tmp_path, other)
    check_base(tmp_path, other, allow_other_base=True)
    assert f"has {'b' * 16}; loading it anyway (allow_other_base)" in notices(caplog)


def test_an_adapter_saved_without_base_model_json_loads_with_a_notice(tmp_path, caplog):
    save_adapter(tmp_path, {"w": torch.zeros(1)}, {"r": 2})
    check_base(tmp_path, "a" * 64)
    assert "has no base_model.json" in notices(caplog)


def test_the_adapter_files_follow_the_umask(tmp_path):
    """safetensors alone leaves its file 0600: a teammate sharing the results could not load it."""
    old = os.umask(0o022)
    try:
        save_adapter(tmp_path, {"w": torch.zeros(1)}, {"r": 1})
    finally:
        os.umask(old)
    assert {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()} == {
        "adapter_model.safetensors": 0o644,
        "adapter_config.json": 0o644,
    }
