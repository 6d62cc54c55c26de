"""VeRA's layers: the shared projections' shapes, the saved keys, what trains, the identity at init, the two
paths of the forward. (Projections, outputs, dropout and merge against peft's VeRA:
tests/reference/test_peft_parity.py.)"""

from __future__ import annotations

import json

import pytest
import torch
from helpers.peft_reference import assert_same_outputs, outputs, save_adapter_for_test, trained
from safetensors.torch import load_file
from torch import nn

from variants import build, vera
from variants.base import PEFT_PREFIX, Targets, adapter_layers
from variants.vera import SharedProjections, VeRALinear, merge_is_cheaper, shared_projections

# Layers of two shapes (32 -> 32 and 32 -> 64), so each slices the shared pair differently.
MIXED = Targets(modules=["query", "value", "intermediate.dense"], head=["classifier"])


def test_vera_projections_span_the_largest_layer(tiny_bert):
    """One pair for every layer: A is r x the largest input size, B the largest output size x r."""
    variant = build("vera", {"r": 16})
    shared = shared_projections(variant.apply(tiny_bert(), MIXED))
    assert shared.vera_A.shape == (16, 32) and shared.vera_B.shape == (64, 16)  # r x max_in, max_out x r


@pytest.mark.parametrize("save_projection", [True, False])
def test_vera_saved_keys_and_config(save_projection, tmp_path, tiny_bert, tiny_batch):
    variant, model = trained(tiny_bert, tiny_batch, MIXED, "vera", r=16, save_projection=save_projection)
    save_adapter_for_test(variant, model, tmp_path, "tiny-bert")
    saved = load_file(str(tmp_path / "adapter_model.safetensors"))
    layer = f"{PEFT_PREFIX}bert.encoder.layer.0.intermediate.dense"
    assert saved[f"{layer}.vera_lambda_b"].shape == (64,)
    assert saved[f"{layer}.vera_lambda_d"].shape == (16,)
    assert ("base_model.vera_A" in saved) == ("base_model.vera_B" in saved) == save_projection
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert config["peft_type"] == "VERA" and config["save_projection"] == save_projection
    assert (config["r"], config["projection_prng_key"], config["d_initial"]) == (16, 0, 0.1)


def test_vera_trains_only_vectors_and_head(tiny_bert, attention_targets):
    """The shared projections are frozen buffers, neither parameters nor in the model's state_dict."""
    r = 256
    model = build("vera", {"r": r}).apply(tiny_bert(), attention_targets)
    trainable = {n: p.numel() for n, p in model.named_parameters() if p.requires_grad}
    vectors = {n: k for n, k in trainable.items() if ".vera_lambda_" in n}
    head = {n: k for n, k in trainable.items() if n.startswith("classifier.")}
    assert set(trainable) == set(vectors) | set(head)
    assert sum(vectors.values()) == 4 * (r + 32)  # 2 layers x (query, value) x (lambda_d + lambda_b)
    assert not any("vera_A" in k or "vera_B" in k for k in model.state_dict())
    shared = shared_projections(model)
    assert not shared.vera_A.requires_grad and shared.vera_A.shape == (r, 32)
    assert all(layer.shared is shared for layer in adapter_layers(model).values())


def test_vera_init_is_identity_and_lambdas(tiny_bert, tiny_batch):
    model = build("vera", {"r": 16, "d_initial": 0.1}).apply(tiny_bert(), MIXED)
    for layer in adapter_layers(model).values():
        assert not layer.vera_lambda_b.any()
        assert torch.equal(layer.vera_lambda_d, torch.full((16,), 0.1))
    assert_same_outputs(outputs(tiny_bert(), tiny_batch), outputs(model, tiny_batch))


def test_vera_keeps_the_compute_dtype_under_autocast(tiny_bert):
    model = build("vera", {"r": 16}).apply(tiny_bert(), MIXED)
    layer = next(iter(adapter_layers(model).values()))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x = torch.randn(2, 5, 32)
        assert layer(x).dtype == layer.base_layer(x).dtype == torch.bfloat16


def vera_layer(dropout: float = 0.0) -> VeRALinear:
    """A 40 -> 48 VeRA layer (r 16) with both lambdas away from their start, so every term matters."""
    torch.manual_seed(0)
    shared = SharedProjections(16, seed=0)
    shared.generate(48, 40, torch.device("cpu"))
    layer = VeRALinear(nn.Linear(40, 48), shared, d_initial=0.1, dropout=dropout)
    with torch.no_grad():
        layer.vera_lambda_b.normal_()
        layer.vera_lambda_d.normal_()
    return layer


def path_outputs(layer: VeRALinear, x: torch.Tensor, merged: bool, autocast: bool, monkeypatch):
    """Output and the gradients of x, lambda_b, lambda_d with one path forced."""
    monkeypatch.setattr(vera, "merge_is_cheaper", lambda *args: merged)
    layer.zero_grad()
    x = x.clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        y = layer(x)
    y.float().pow(2).sum().backward()
    return [y.float(), x.grad, layer.vera_lambda_b.grad, layer.vera_lambda_d.grad]


@pytest.mark.parametrize("autocast", [False, True], ids=["fp32", "bf16-autocast"])
def test_both_paths_give_the_same_outputs_and_gradients(autocast, monkeypatch):
    """The merged path equals the factored one; under bf16 autocast (the CUDA path) each is within bf16
    rounding of the fp32 result."""
    layer = vera_layer()
    x = torch.randn(3, 7, 40)
    reference = path_outputs(layer, x, merged=False, autocast=False, monkeypatch=monkeypatch)
    for merged in (True, False):
        got = path_outputs(layer, x, merged, autocast, monkeypatch)
        for ours, ref in zip(got, reference, strict=True):
            assert ref.abs().max() > 0
            tol = (2e-2 if autocast else 1e-5) * ref.abs().max().item()
            torch.testing.assert_close(ours, ref, rtol=0, atol=tol)


def test_the_chooser_picks_each_path_where_it_is_cheaper():
    """MiniLM's attention (384 x 384, VeRA's r 256): a training batch of 1024 tokens merges, a few tokens
    do not; forward-only merges from about out * in / (in + out) = 192 tokens."""
    assert merge_is_cheaper(1024, 256, 384, 384, backward=True)
    assert not merge_is_cheaper(8, 256, 384, 384, backward=True)
    assert not merge_is_cheaper(150, 256, 384, 384, backward=False)
    assert merge_is_cheaper(250, 256, 384, 384, backward=False)
    assert not merge_is_cheaper(1024, 8, 384, 384, backward=True)  # a small rank stays factored
    layer = vera_layer()  # 40 -> 48, r 16: merges from 69 tokens in training, 22 forward only
    assert layer.merges_update(torch.randn(4, 32, 40)) and not layer.merges_update(torch.randn(2, 16, 40))
    with torch.no_grad():
        assert layer.merges_update(torch.randn(2, 16, 40))
    dropped = vera_layer(dropout=0.1)
    assert not dropped.merges_update(torch.randn(64, 8, 40))  # the update sees dropout(x), the base x
    assert dropped.eval().merges_update(torch.randn(64, 8, 40))
