"""OFT's layers: the skew-symmetric matrix from its stored triangle, the Cayley and Cayley-Neumann maps,
the block-diagonal rotation of the input, merge, the block size peft fits to each layer, what trains and
the saved keys and config. (Outputs, gradients, train mode and merged weights against peft's OFT:
tests/reference/test_peft_parity.py.)"""

from __future__ import annotations

import json
import logging
import warnings

import pytest
import torch
import torch.nn.functional as F
from helpers.peft_reference import assert_same_outputs, outputs, save_adapter_for_test, trained
from safetensors.torch import load_file
from torch import nn

import variants
from bench.testing import check_variant
from variants import build
from variants.base import PEFT_PREFIX, Targets, adapter_layers
from variants.oft import OFT, OFTLinear, cayley, cayley_neumann, fitted_block_size, skew_symmetric
from variants.peft_twin import twin

QUERY = f"{PEFT_PREFIX}bert.encoder.layer.0.attention.self.query"


def test_oft_is_registered_with_peft_s_default_config(compose):
    assert variants.get("oft") is OFT
    cfg = compose(["variant=oft"]).variant
    assert (cfg.lr, cfg.targets, cfg.oft_block_size, cfg.block_share) == (1e-4, "attention", 32, False)
    assert (cfg.use_cayley_neumann, cfg.num_cayley_neumann_terms) == (True, 5)


def test_skew_symmetric_holds_the_vector_in_its_upper_triangle():
    rows, cols = torch.triu_indices(4, 4, 1)
    vec = torch.arange(1.0, 13.0).view(2, 6)
    q = skew_symmetric(vec, rows, cols, 4)
    assert torch.equal(q.transpose(-2, -1), -q)
    assert torch.equal(q[0, 0], torch.tensor([0.0, 1.0, 2.0, 3.0]))  # row-major: (0,1), (0,2), (0,3), ...
    assert torch.equal(q[1, 2, 3], torch.tensor(12.0)) and torch.equal(q[1, 3, 2], torch.tensor(-12.0))


def small_skew(k: int = 3, size: int = 6, scale: float = 0.05) -> torch.Tensor:
    torch.manual_seed(0)
    rows, cols = torch.triu_indices(size, size, 1)
    return skew_symmetric(scale * torch.randn(k, size * (size - 1) // 2), rows, cols, size).double()


@pytest.mark.parametrize("terms", [4, 5, 7])
def test_neumann_is_the_truncated_series_of_the_cayley_map(terms):
    """R = (I + Q)(I + Q + ... + Q^(terms-2)): close to (I + Q)(I - Q)^-1, up to Q^(terms-1)."""
    q = small_skew()
    eye = torch.eye(6, dtype=q.dtype)
    series = sum(torch.linalg.matrix_power(q, k) for k in range(terms - 1))
    torch.testing.assert_close(cayley_neumann(q, terms), (eye + q) @ series)
    exact = (eye + q) @ torch.linalg.inv(eye - q)
    assert (cayley_neumann(q, terms) - exact).abs().max() < 10 * 0.5 ** (terms - 1)


def test_neumann_with_few_terms_is_peft_s():
    q = small_skew()
    eye = torch.eye(6, dtype=q.dtype)
    torch.testing.assert_close(cayley_neumann(q, 2), eye + 2 * q)
    torch.testing.assert_close(cayley_neumann(q, 3), eye + 2 * q + 2 * q @ q + q @ q @ q)  # as 4 terms


@pytest.mark.parametrize("terms", [2, 3, 4, 5, 6])
def test_neumann_equals_peft_s_cayley_batch(terms):
    from peft.tuners.oft.layer import OFTRotationModule

    module = OFTRotationModule(2, 15, 6, 12, num_cayley_neumann_terms=terms)
    vec = 0.1 * torch.randn(2, 15)
    rows, cols = torch.triu_indices(6, 6, 1)
    theirs = module._cayley_batch(vec, 6, True, terms)
    ours = cayley_neumann(skew_symmetric(vec, rows, cols, 6), terms)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_exact_cayley_is_orthogonal_and_neumann_nearly():
    q = small_skew()
    eye = torch.eye(6, dtype=q.dtype).expand_as(q)
    exact = cayley(q)
    torch.testing.assert_close(exact @ exact.transpose(-2, -1), eye)
    torch.testing.assert_close(exact, (eye - q) @ torch.linalg.inv(eye + q))

    def off_orthogonal(r):
        return (r @ r.transpose(-2, -1) - eye).abs().max()

    assert 0 < off_orthogonal(cayley_neumann(q, 5)) < off_orthogonal(cayley_neumann(q, 2)) / 5


def oft_layer(block_size: int = 4, terms: int | None = 5, block_share: bool = False) -> OFTLinear:
    """A 12 -> 5 layer with a random bias and a trained-looking Q."""
    torch.manual_seed(0)
    layer = OFTLinear(nn.Linear(12, 5), block_size, terms, block_share)
    with torch.no_grad():
        layer.oft_R.normal_(0, 0.1)
    return layer


@pytest.mark.parametrize("terms", [5, None])
def test_forward_rotates_each_block_of_the_input(terms):
    layer = oft_layer(terms=terms)
    x = torch.randn(2, 3, 12)
    blocks = layer.rotation_blocks()
    assert blocks.shape == (3, 4, 4)
    rotated = torch.cat([x[..., 4 * i : 4 * i + 4] @ blocks[i] for i in range(3)], dim=-1)
    torch.testing.assert_close(layer(x), layer.base_layer(rotated))
    torch.testing.assert_close(layer(x), layer.base_layer(x @ layer.rotation()))


def test_block_share_uses_one_q_for_every_block():
    layer = oft_layer(block_share=True)
    assert layer.oft_R.shape == (1, 6)
    blocks = layer.rotation_blocks()
    assert all(torch.equal(blocks[i], blocks[0]) for i in range(3))


def test_merge_folds_the_rotation_into_w_and_unmerge_restores_it():
    layer = oft_layer()
    base = layer.base_layer
    w, b = base.weight.detach().clone(), base.bias.detach().clone()
    x = torch.randn(3, 12)
    before = layer(x)
    torch.testing.assert_close(before, base(x) + F.linear(x, layer.delta_weight()))
    layer.merge()
    torch.testing.assert_close(base.weight, w @ layer.rotation().detach().t())
    assert torch.equal(base.bias, b)
    torch.testing.assert_close(layer(x), before)
    layer.unmerge()
    assert torch.equal(base.weight, w) and torch.equal(layer(x), before)


def test_oft_starts_at_the_base_and_trains_the_triangles(tiny_bert, tiny_batch, attention_targets):
    """Counted by hand: query and value (in 32) of 2 layers, blocks of 8: 4 blocks x 28 each."""
    model = build("oft", {"oft_block_size": 8}).apply(tiny_bert(), attention_targets)
    layers = adapter_layers(model).values()
    assert all(layer.oft_R.shape == (4, 28) and not layer.oft_R.any() for layer in layers)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == 4 * 4 * 28 + (32 * 2 + 2)
    assert not any(k.endswith((".rows", ".cols")) for k in model.state_dict())  # index buffers: not saved
    assert_same_outputs(outputs(tiny_bert(), tiny_batch), outputs(model, tiny_batch), rtol=0, atol=0)


@pytest.mark.parametrize("in_features", [12, 30, 32, 48, 64, 97, 384])
@pytest.mark.parametrize("block_size", [2, 5, 7, 16, 24, 32, 40])
def test_the_fitted_block_size_is_peft_s(in_features, block_size):
    from peft.tuners.oft.layer import OFTLayer

    valid = in_features % block_size == 0 and block_size <= in_features
    theirs = block_size if valid else OFTLayer.adjust_oft_parameters(None, in_features, block_size)
    assert fitted_block_size(in_features, block_size) == theirs


def test_a_block_size_that_does_not_divide_is_fitted_with_a_notice(tiny_bert, attention_targets, caplog):
    with caplog.at_level(logging.INFO, logger="peft-bench"):
        model = build("oft", {"oft_block_size": 12}).apply(tiny_bert(), attention_targets)
    assert all(layer.block_size == 8 for layer in adapter_layers(model).values())
    assert "oft_block_size 12 does not divide the input size 32 of bert.encoder.layer.0" in caplog.text


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"oft_block_size": 1}, "oft_block_size 1 must be 2 or more"),
        ({"num_cayley_neumann_terms": 1}, r"num_cayley_neumann_terms 1 must be 2 or more \(1 term is R"),
    ],
)
def test_bad_options_are_refused(options, message, tiny_bert, attention_targets):
    with pytest.raises(ValueError, match=message):
        build("oft", options).apply(tiny_bert(), attention_targets)


def test_oft_saved_keys_and_a_config_peft_reads_without_warning(tmp_path, tiny_bert, tiny_batch):
    from peft import PeftConfig

    targets = Targets(modules=["query", "value"])
    variant, model = trained(tiny_bert, tiny_batch, targets, "oft", oft_block_size=8)
    save_adapter_for_test(variant, model, tmp_path, "tiny-bert")
    saved = load_file(str(tmp_path / "adapter_model.safetensors"))
    assert saved[f"{QUERY}.oft_R.weight"].shape == (4, 28)
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert (config["peft_type"], config["r"], config["oft_block_size"]) == ("OFT", 0, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "unexpected keyword", no Cayley-Neumann version warning
        loaded = PeftConfig.from_pretrained(tmp_path)
    assert (loaded.use_cayley_neumann, loaded.num_cayley_neumann_terms, loaded.coft) == (True, 5, False)


@pytest.mark.parametrize(
    "options",
    [
        {"oft_block_size": 8},
        {"oft_block_size": 8, "use_cayley_neumann": False},
        {"oft_block_size": 4, "block_share": True},
    ],
)
def test_oft_passes_the_kit_in_its_other_forms(options):
    """The contract matrix runs the defaults (one block of 32 on the tiny model); here several blocks."""
    check_variant("oft", options)


def test_peft_s_twin_builds_the_same_oft_from_our_config(tiny_bert):
    """The speed benchmark's peft OFT (get_peft_model with the config we save) trains our tensor sizes."""
    variant = build("oft", {"oft_block_size": 8})
    ours = variant.apply(tiny_bert(), Targets(modules=["query", "value", "output.dense"]))
    theirs = twin(variant).model(ours, tiny_bert())

    def sizes(model):
        return sorted(p.numel() for p in model.parameters() if p.requires_grad)

    assert sizes(theirs) == sizes(ours)
