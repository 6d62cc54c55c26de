"""DoRA's layer: the magnitude's start, the norm without the out x in matrix (memory, cache, autocast), the
paper's formula, the saved files. (Outputs, gradients, init and merge against peft's LoRA with use_dora:
tests/reference/test_peft_parity.py.)"""

from __future__ import annotations

import io
import json

import pytest
import torch
import torch.nn.functional as F
from helpers.peft_reference import assert_same_outputs, outputs, save_adapter_for_test, trained
from torch import nn

from variants import build
from variants.base import PEFT_PREFIX, adapter_layers
from variants.dora import DoRALinear


def test_dora_magnitude_starts_at_row_norms(tiny_bert, tiny_batch, attention_targets):
    """m = ||W||_row per output row, so the model starts equal to the base (peft's m: the parity matrix)."""
    variant = build("dora", {"r": 4, "alpha": 8.0})
    model = variant.apply(tiny_bert(), attention_targets)
    for layer in adapter_layers(model).values():
        w = layer.base_layer.weight
        torch.testing.assert_close(layer.magnitude, w.norm(dim=1), rtol=1e-6, atol=0)  # per output row
    assert_same_outputs(outputs(tiny_bert(), tiny_batch), outputs(model, tiny_batch))  # identity at init


@pytest.mark.parametrize("training", [False, True])
def test_dora_keeps_no_out_by_in_matrix_for_backward(training):
    """Autograd saves activations and small factors only: never W + sBA (the norm is a constant)."""
    torch.manual_seed(0)
    layer = DoRALinear(nn.Linear(40, 48), r=4, alpha=8.0, dropout=0.1, use_rslora=False, init="kaiming")
    nn.init.normal_(layer.lora_B)
    layer.train(training)
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        layer(torch.randn(3, 40)).sum().backward()
    weight = layer.base_layer.weight
    assert layer.magnitude.grad.abs().max() > 0 and layer.lora_A.grad.abs().max() > 0
    big = [tuple(t.shape) for t in saved if t.numel() >= 48 * 40 and t.data_ptr() != weight.data_ptr()]
    assert big == []


def test_dora_adapter_files(tmp_path, tiny_bert, tiny_batch, attention_targets):
    variant, model = trained(tiny_bert, tiny_batch, attention_targets, "dora", r=4, alpha=8.0)
    save_adapter_for_test(variant, model, tmp_path, "tiny-bert")
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert (config["peft_type"], config["use_dora"], config["r"], config["lora_alpha"]) == (
        "LORA",
        True,
        4,
        8.0,
    )
    keys = variant.adapter_state_dict(model)
    key = f"{PEFT_PREFIX}bert.encoder.layer.0.attention.self.query.lora_magnitude_vector"
    assert keys[key].shape == (32,)


@pytest.mark.parametrize("training", [False, True])
def test_dora_keeps_the_compute_dtype_under_autocast(training):
    layer = DoRALinear(nn.Linear(32, 32), r=4, alpha=8.0, dropout=0.1, use_rslora=False, init="kaiming")
    layer.train(training)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x = torch.randn(2, 5, 32)
        assert layer(x).dtype == layer.base_layer(x).dtype == torch.bfloat16


def dora_layer(dropout: float = 0.0, in_features: int = 40, out_features: int = 48) -> DoRALinear:
    """A DoRALinear whose B is non-zero and whose magnitude is off its start, so every term matters."""
    torch.manual_seed(0)
    base = nn.Linear(in_features, out_features)
    layer = DoRALinear(base, r=4, alpha=8.0, dropout=dropout, use_rslora=False, init="kaiming")
    with torch.no_grad():
        nn.init.normal_(layer.lora_B, std=0.3)
        layer.magnitude.mul_(1 + 0.1 * torch.randn_like(layer.magnitude))
    return layer


def dense_norm(layer: DoRALinear) -> torch.Tensor:
    """||W + s B A||_row with the out x in matrix formed, in fp32."""
    direction = layer.base_weight().float() + layer.scaling * layer.lora_B.float() @ layer.lora_A.float()
    return torch.linalg.vector_norm(direction, dim=1)


def plain_dora(layer: DoRALinear, x: torch.Tensor) -> torch.Tensor:
    """The paper's h = m / ||W + s B A||_row * (W + s B A) x + b, the norm detached (section 4.3)."""
    direction = layer.base_weight() + layer.scaling * layer.lora_B @ layer.lora_A
    scale = layer.magnitude / dense_norm(layer).detach()
    return F.linear(x, scale[:, None] * direction, layer.base_layer.bias)


def test_weight_norm_equals_the_dense_norm():
    layer = dora_layer()
    norm = layer.weight_norm()
    assert norm.dtype == torch.float32 and not norm.requires_grad
    torch.testing.assert_close(norm, dense_norm(layer), rtol=1e-6, atol=0)
    assert (norm - layer.base_layer.weight.norm(dim=1)).abs().min() > 1e-3  # B A moves every row's norm
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.testing.assert_close(layer.weight_norm(), norm, rtol=0, atol=0)  # fp32, outside autocast


def test_weight_norm_follows_changes_of_the_base_weight():
    """The cached ||W||_row^2 is dropped when W changes: in place, moved, replaced, merged and unmerged."""
    layer = dora_layer()
    layer.weight_norm()
    with torch.no_grad():
        layer.base_layer.weight.mul_(2)  # in place: a version bump
    torch.testing.assert_close(layer.weight_norm(), dense_norm(layer), rtol=1e-6, atol=0)
    layer.base_layer.weight.data = torch.randn(48, 40)  # new storage, same parameter and version
    torch.testing.assert_close(layer.weight_norm(), dense_norm(layer), rtol=1e-6, atol=0)
    layer.base_layer = nn.Linear(40, 48)
    torch.testing.assert_close(layer.weight_norm(), dense_norm(layer), rtol=1e-6, atol=0)
    unmerged = layer.weight_norm()
    layer.merge()  # writes through .data: no version bump
    torch.testing.assert_close(layer.weight_norm(), dense_norm(layer), rtol=1e-6, atol=0)
    layer.unmerge()
    torch.testing.assert_close(layer.weight_norm(), unmerged, rtol=0, atol=0)


def test_a_layer_with_a_cached_norm_pickles():
    layer = dora_layer()
    norm = layer.weight_norm()
    buffer = io.BytesIO()
    torch.save(layer, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)  # a test's own bytes
    torch.testing.assert_close(loaded.weight_norm(), norm, rtol=0, atol=0)
    assert layer._base_norms is not None  # the live layer keeps its cache


def test_weight_norm_of_a_base_weight_made_in_each_call():
    """A subclass whose base_weight() is a new tensor each call (as QLoRA's dequantization) never hits
    the cache, even when what it is made from changes without a version bump."""

    class Doubled(DoRALinear):
        def base_weight(self):
            return 2 * self.base_layer.weight

    torch.manual_seed(0)
    layer = Doubled(nn.Linear(40, 48), r=4, alpha=8.0, dropout=0.0, use_rslora=False, init="kaiming")
    nn.init.normal_(layer.lora_B)
    torch.testing.assert_close(layer.weight_norm(), dense_norm(layer), rtol=1e-6, atol=0)
    layer.base_layer.weight.data.mul_(3)
    torch.testing.assert_close(layer.weight_norm(), dense_norm(layer), rtol=1e-6, atol=0)


@pytest.mark.parametrize("autocast", [False, True], ids=["fp32", "bf16-autocast"])
def test_forward_and_gradients_equal_the_plain_formula(autocast):
    """Outputs and the gradients of x, m, A and B equal the paper's formula with W + s B A formed; under
    bf16 autocast (the CUDA path) within bf16 rounding of the fp32 formula."""
    layer = dora_layer()
    x = torch.randn(3, 7, 40)
    grads = []
    for fn, cast in ((plain_dora, False), (DoRALinear.forward, autocast)):
        layer.zero_grad()
        xi = x.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cast):
            y = fn(layer, xi)
        y.float().pow(2).sum().backward()
        grads.append([y.float(), xi.grad, layer.magnitude.grad, layer.lora_A.grad, layer.lora_B.grad])
    for ours, plain in zip(*reversed(grads), strict=True):
        assert plain.abs().max() > 0
        tol = 2e-2 * plain.abs().max().item() if autocast else 1e-5 * plain.abs().max().item()
        torch.testing.assert_close(ours, plain, rtol=0, atol=tol)
