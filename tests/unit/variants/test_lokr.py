"""LoKr's layer: the factorization of the layer sizes (peft's rule), which factor is low-rank, the
Kronecker form of the update, the two initialisations (peft's draws, from one seed), rank dropout's
rescaling, the saved keys and adapter config, the errors. (Outputs, train mode, gradients and merge
against peft: tests/reference/test_peft_parity.py.)"""

from __future__ import annotations

import dataclasses
import json

import peft
import pytest
import torch
import torch.nn.functional as F
from helpers.peft_reference import assert_same_outputs, outputs, save_adapter_for_test, trained
from peft import LoKrConfig, get_peft_model, get_peft_model_state_dict
from peft.tuners.lokr.layer import factorization as peft_factorization
from safetensors.torch import load_file
from torch import nn

from bench.testing import check_variant
from variants import build
from variants.base import PEFT_PREFIX, Targets, adapter_layers
from variants.lokr import LoKrLinear, factorization

MIXED = Targets(modules=["query", "value", "intermediate.dense"], head=["classifier"])


@pytest.mark.parametrize(
    "dimension, factor, pair",
    [
        (256, -1, (16, 16)),
        (128, -1, (8, 16)),
        (127, -1, (1, 127)),
        (384, -1, (16, 24)),  # MiniLM's hidden size
        (1536, -1, (32, 48)),  # and its intermediate size
        (128, 4, (4, 32)),
        (12, 4, (4, 3)),  # a factor that divides is kept first, even above the square root
        (384, 5, (4, 96)),  # one that does not: the largest divisor up to it
        (36, 100, (6, 6)),  # and never past the square root
    ],
)
def test_factorization(dimension, factor, pair):
    assert factorization(dimension, factor) == pair


def test_factorization_equals_peft_s():
    for dimension in range(1, 1100):
        for factor in (-1, 1, 2, 3, 4, 5, 8, 16, 33):
            expected = peft_factorization(dimension, factor)
            assert factorization(dimension, factor) == expected, (dimension, factor)


def lokr_layer(fan_in: int = 32, fan_out: int = 64, **options) -> LoKrLinear:
    settings = dict(
        r=2, alpha=8.0, rank_dropout=0.0, module_dropout=0.0, rank_dropout_scale=False, decompose_both=False
    )
    settings.update(decompose_factor=-1, init="default")
    settings.update(options)
    torch.manual_seed(0)
    return LoKrLinear(nn.Linear(fan_in, fan_out), **settings)


def shapes(layer: LoKrLinear) -> dict[str, tuple[int, ...]]:
    return {key: tuple(t.shape) for key, t in layer.adapter_tensors().items()}


@pytest.mark.parametrize(
    "options, expected",
    [
        # 64 = 8 x 8 out, 32 = 4 x 8 in: W1 8 x 4, W2 8 x 8, low-rank below r = max(8, 8) / 2 = 4
        ({"r": 4}, {"lokr_w1": (8, 4), "lokr_w2": (8, 8)}),
        ({"r": 3}, {"lokr_w1": (8, 4), "lokr_w2_a": (8, 3), "lokr_w2_b": (3, 8)}),
        # decompose_both: W1 too, below r = max(8, 4) / 2 = 4
        ({"r": 4, "decompose_both": True}, {"lokr_w1": (8, 4), "lokr_w2": (8, 8)}),
        (
            {"r": 3, "decompose_both": True},
            {"lokr_w1_a": (8, 3), "lokr_w1_b": (3, 4), "lokr_w2_a": (8, 3), "lokr_w2_b": (3, 8)},
        ),
        # decompose_factor 4: 64 = 4 x 16, 32 = 4 x 8
        ({"r": 2, "decompose_factor": 4}, {"lokr_w1": (4, 4), "lokr_w2_a": (16, 2), "lokr_w2_b": (2, 8)}),
    ],
)
def test_which_factor_is_low_rank(options, expected):
    assert shapes(lokr_layer(**options)) == expected


@pytest.mark.parametrize("options", [{"r": 8}, {"r": 1, "decompose_both": True}])
def test_lokr_update_is_the_scaled_kronecker_product(options):
    """dW[(i, k), (j, n)] = alpha / r W1[i, j] W2[k, n], and forward = F.linear(x, W + dW, b)."""
    layer = lokr_layer(**options)
    with torch.no_grad():
        for t in layer.adapter_tensors().values():
            t.normal_()
    w1, w2 = layer.factor(layer.w1_keys), layer.factor(layer.w2_keys)
    (out_l, in_m), (out_k, in_n) = w1.shape, w2.shape
    blocks = layer.scaling * w1[:, None, :, None] * w2[None, :, None, :]
    torch.testing.assert_close(layer.delta_weight(), blocks.reshape(out_l * out_k, in_m * in_n))
    x = torch.randn(3, 5, 32)
    expected = F.linear(x, layer.base_layer.weight + layer.delta_weight(), layer.base_layer.bias)
    torch.testing.assert_close(layer.eval()(x), expected)


@pytest.mark.parametrize(
    "ours, theirs, zero",
    [
        ({"r": 2}, {"r": 2}, {"lokr_w1"}),
        ({"r": 1, "decompose_both": True}, {"r": 1, "decompose_both": True}, {"lokr_w1_a"}),
        ({"r": 2, "init": "lycoris"}, {"r": 2, "init_weights": "lycoris"}, {"lokr_w2_b"}),
        ({"r": 8, "init": "lycoris"}, {"r": 8, "init_weights": "lycoris"}, {"lokr_w2"}),
    ],
)
def test_lokr_starts_as_the_base_with_peft_s_draws(ours, theirs, zero, tiny_bert, tiny_batch):
    """From one seed our factors are peft's; the init's zero factor makes the update 0."""
    base = tiny_bert()
    torch.manual_seed(3)
    model = build("lokr", ours).apply(base, MIXED)
    theirs_base = tiny_bert()
    torch.manual_seed(3)
    config = LoKrConfig(target_modules=MIXED.modules, modules_to_save=["classifier"], **theirs)
    theirs_sd = {k: v for k, v in get_peft_model_state_dict(get_peft_model(theirs_base, config)).items()}
    mine = {
        f"{PEFT_PREFIX}{name}.{key}": t
        for name, layer in adapter_layers(model).items()
        for key, t in layer.adapter_tensors().items()
    }
    assert set(mine) == {k for k in theirs_sd if ".lokr_" in k}
    for key, t in mine.items():
        assert torch.equal(t, theirs_sd[key]), key
        assert (t.abs().max() == 0) == (key.rsplit(".", 1)[1] in zero), key
    assert_same_outputs(outputs(tiny_bert(), tiny_batch), outputs(model, tiny_batch), rtol=0, atol=0)


@pytest.mark.parametrize("scale", [False, True])
def test_rank_dropout_rescales_only_with_rank_dropout_scale(scale):
    layer = lokr_layer(r=8, rank_dropout=0.4, rank_dropout_scale=scale).train()
    with torch.no_grad():
        layer.lokr_w1.normal_()
    x = torch.randn(2, 32)
    torch.manual_seed(1)
    torch.rand(1)  # module dropout's draw
    keep = (torch.rand(64) > 0.4).float()
    assert 0 < keep.sum() < 64
    mask = keep / keep.mean() if scale else keep
    expected = layer.base_layer(x) + F.linear(x, layer.delta_weight() * mask[:, None])
    torch.manual_seed(1)
    torch.testing.assert_close(layer(x), expected)


def test_lokr_saved_keys_and_a_config_peft_reads_without_unknown_fields(tmp_path, tiny_bert, tiny_batch):
    options = {"r": 1, "decompose_both": True, "decompose_factor": 4, "init": "lycoris"}
    variant, model = trained(tiny_bert, tiny_batch, MIXED, "lokr", **options)
    save_adapter_for_test(variant, model, tmp_path, "tiny-bert")
    saved = load_file(str(tmp_path / "adapter_model.safetensors"))
    layer = f"{PEFT_PREFIX}bert.encoder.layer.0.intermediate.dense"
    assert {k.removeprefix(layer + "."): tuple(v.shape) for k, v in saved.items() if k.startswith(layer)} == {
        "lokr_w1_a": (4, 1),
        "lokr_w1_b": (1, 4),
        "lokr_w2_a": (16, 1),
        "lokr_w2_b": (1, 8),
    }
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    fields = {f.name for f in dataclasses.fields(peft.LoKrConfig)}
    assert set(config) <= fields, sorted(set(config) - fields)  # nothing peft would warn about
    assert config["peft_type"] == "LOKR" and config["init_weights"] == "lycoris"
    assert (config["r"], config["decompose_both"], config["decompose_factor"]) == (1, True, 4)
    assert config["rank_dropout_scale"] is False


@pytest.mark.parametrize(
    "options, message",
    [
        ({"init": "zeros"}, "unknown LoKr init 'zeros'; choose one of default, lycoris"),
        ({"decompose_factor": 0}, "decompose_factor=0 must be -1"),
        ({"r": 0}, "rank r=0 must be a positive integer"),
    ],
)
def test_lokr_refuses_bad_options(options, message, tiny_bert, attention_targets):
    with pytest.raises(ValueError, match=message):
        build("lokr", options).apply(tiny_bert(), attention_targets)


def test_lokr_passes_the_kit_with_every_factor_low_rank_and_both_dropouts():
    """The contract matrix runs the defaults (W1, W2 full on the tiny model); here the other paths."""
    options = {"r": 1, "decompose_both": True, "init": "lycoris", "rank_dropout": 0.2, "module_dropout": 0.2}
    check_variant("lokr", {**options, "rank_dropout_scale": True})
