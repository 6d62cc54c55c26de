"""A run's adapter files (bench.results.adapter_files): the tensors and the config, as peft reads them."""

import json

import torch
from safetensors.torch import load_file

from bench.results.adapter_files import save_adapter


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
