"""LoHa's layer and the LyCORIS layer it shares with LoKr: the update's form and rank, the initial draws
(peft's, from one seed), module and rank dropout in training, the saved keys and adapter config, the
errors. (Outputs, train mode, gradients and merge against peft: tests/reference/test_peft_parity.py.)"""

from __future__ import annotations

import dataclasses
import json

import peft
import pytest
import torch
import torch.nn.functional as F
from helpers.peft_reference import assert_same_outputs, outputs, save_adapter_for_test, trained
from peft import LoHaConfig, get_peft_model, get_peft_model_state_dict
from safetensors.torch import load_file
from torch import nn

from bench.testing import check_variant
from variants import build
from variants.base import PEFT_PREFIX, Targets, adapter_layers
from variants.loha import LoHaLinear

MIXED = Targets(modules=["query", "value", "intermediate.dense"], head=["classifier"])
KEYS = ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b")


def loha_layer(r: int = 2, alpha: float = 6.0, rank_dropout: float = 0.0, module_dropout: float = 0.0):
    """A 12 -> 20 LoHa layer with every factor drawn at random (W2b is 0 at init)."""
    torch.manual_seed(0)
    layer = LoHaLinear(nn.Linear(12, 20), r, alpha, rank_dropout, module_dropout)
    with torch.no_grad():
        for t in layer.adapter_tensors().values():
            t.normal_()
    return layer


def test_loha_update_is_the_scaled_hadamard_product_of_two_low_rank_products():
    """dW = alpha / r (W1a W1b) ⊙ (W2a W2b), of rank r^2 (here 4) > r; forward = F.linear(x, W + dW, b)."""
    layer = loha_layer(r=2, alpha=6.0)
    w1 = layer.hada_w1_a @ layer.hada_w1_b
    w2 = layer.hada_w2_a @ layer.hada_w2_b
    delta = layer.delta_weight()
    assert layer.scaling == 3.0
    torch.testing.assert_close(delta, 3.0 * torch.einsum("ij,ij->ij", w1, w2))
    assert torch.linalg.matrix_rank(delta) == 4
    x = torch.randn(3, 5, 12)
    expected = F.linear(x, layer.base_layer.weight + delta, layer.base_layer.bias)
    torch.testing.assert_close(layer.eval()(x), expected)


def test_loha_starts_as_the_base_with_peft_s_draws(tiny_bert, tiny_batch):
    """From one seed our factors are peft's (W1a, W1b, W2a kaiming-uniform in that order, W2b 0)."""
    base = tiny_bert()
    torch.manual_seed(3)
    model = build("loha", {"r": 4}).apply(base, MIXED)
    theirs_base = tiny_bert()
    torch.manual_seed(3)
    config = LoHaConfig(r=4, alpha=8, target_modules=MIXED.modules, modules_to_save=["classifier"])
    theirs = get_peft_model(theirs_base, config)
    theirs_sd = {k: v for k, v in get_peft_model_state_dict(theirs).items() if "hada_" in k}
    ours = {
        f"{PEFT_PREFIX}{name}.{key}": t
        for name, layer in adapter_layers(model).items()
        for key, t in layer.adapter_tensors().items()
    }
    assert set(ours) == set(theirs_sd) and len(ours) == 6 * 4
    for key, t in ours.items():
        assert torch.equal(t, theirs_sd[key]), key
        assert t.dtype == torch.float32
        assert (t.abs().max() == 0) == key.endswith("hada_w2_b"), key
    assert_same_outputs(outputs(tiny_bert(), tiny_batch), outputs(model, tiny_batch), rtol=0, atol=0)


def test_loha_trains_the_four_factors_and_the_head(tiny_bert, attention_targets):
    model = build("loha", {"r": 8}).apply(tiny_bert(), attention_targets)
    trainable = {n: p.numel() for n, p in model.named_parameters() if p.requires_grad}
    factors = {n: k for n, k in trainable.items() if ".hada_" in n}
    assert set(trainable) - set(factors) == {"classifier.weight", "classifier.bias"}
    assert sum(factors.values()) == 4 * 2 * (32 * 8 + 8 * 32)  # 4 layers x 2 products x (out r + r in)


def test_module_dropout_skips_the_whole_update_unless_the_draw_exceeds_the_rate():
    layer = loha_layer(module_dropout=0.5)
    x = torch.randn(2, 12)
    base, full = layer.base_layer(x), layer.eval()(x)
    assert (full - base).abs().max() > 0.1
    layer.train()
    applied = []
    for seed in range(12):
        torch.manual_seed(seed)
        applies = torch.rand(1).item() > 0.5
        torch.manual_seed(seed)
        assert torch.equal(layer(x), full if applies else base), seed
        applied.append(applies)
    assert any(applied) and not all(applied)


@pytest.mark.parametrize("rate, training, draws", [(0.0, True, 1), (0.3, True, 1), (0.3, False, 0)])
def test_module_dropout_draws_once_per_training_forward(rate, training, draws):
    """One CPU draw per forward in training, even at rate 0 (as peft: so a seed gives peft's dropout
    masks in the layers after this one too); none in eval."""
    layer = loha_layer(module_dropout=rate).train(training)
    x = torch.randn(2, 12)
    torch.manual_seed(5)
    layer(x)
    after = torch.rand(1)
    torch.manual_seed(5)
    torch.rand(draws)
    assert torch.equal(after, torch.rand(1))


def test_rank_dropout_zeroes_output_rows_and_rescales_the_kept_ones():
    """After the module-dropout draw, one draw per output row: a row is kept when it exceeds the rate,
    and LoHa always rescales the kept rows by 1 / (fraction kept)."""
    layer = loha_layer(rank_dropout=0.4).train()
    x = torch.randn(2, 12)
    torch.manual_seed(1)
    torch.rand(1)  # module dropout's draw
    keep = (torch.rand(20) > 0.4).float()
    assert 0 < keep.sum() < 20
    expected = layer.base_layer(x) + F.linear(x, layer.delta_weight() * (keep / keep.mean())[:, None])
    torch.manual_seed(1)
    torch.testing.assert_close(layer(x), expected)
    torch.testing.assert_close(layer.eval()(x), layer.base_layer(x) + F.linear(x, layer.delta_weight()))


def test_loha_saved_keys_and_a_config_peft_reads_without_unknown_fields(tmp_path, tiny_bert, tiny_batch):
    variant, model = trained(tiny_bert, tiny_batch, MIXED, "loha", r=4, alpha=16.0, rank_dropout=0.1)
    save_adapter_for_test(variant, model, tmp_path, "tiny-bert")
    saved = load_file(str(tmp_path / "adapter_model.safetensors"))
    layer = f"{PEFT_PREFIX}bert.encoder.layer.0.intermediate.dense"
    shapes = {key: tuple(saved[f"{layer}.{key}"].shape) for key in KEYS}
    assert shapes == {"hada_w1_a": (64, 4), "hada_w1_b": (4, 32), "hada_w2_a": (64, 4), "hada_w2_b": (4, 32)}
    assert len(saved) == 6 * 4 + 2  # six layers' factors and the head
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    fields = {f.name for f in dataclasses.fields(peft.LoHaConfig)}
    assert set(config) <= fields, sorted(set(config) - fields)  # nothing peft would warn about
    assert config["peft_type"] == "LOHA" and config["init_weights"] is True
    assert (config["r"], config["alpha"]) == (4, 16.0)
    assert (config["rank_dropout"], config["module_dropout"]) == (0.1, 0.0)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"r": 0}, "rank r=0 must be a positive integer"),
        ({"rank_dropout": 1.0}, r"rank_dropout=1.0 must be in \[0, 1\)"),
        ({"module_dropout": -0.1}, r"module_dropout=-0.1 must be in \[0, 1\)"),
    ],
)
def test_loha_refuses_bad_options(options, message, tiny_bert, attention_targets):
    with pytest.raises(ValueError, match=message):
        build("loha", options).apply(tiny_bert(), attention_targets)


def test_loha_keeps_the_compute_dtype_under_autocast():
    layer = loha_layer()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x = torch.randn(2, 5, 12)
        assert layer(x).dtype == layer.base_layer(x).dtype == torch.bfloat16


def test_loha_passes_the_kit_with_both_dropouts():
    """The contract matrix runs the defaults; here the training path with module and rank dropout."""
    check_variant("loha", {"r": 2, "alpha": 4.0, "rank_dropout": 0.2, "module_dropout": 0.2})
