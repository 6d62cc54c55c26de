"""Tests of the PiSSA plugin: peft-bench's contract test-kit, the paper's initialisation, peft loading.

Run from the package folder after ``pip install -e .`` (the entry-point test needs the install).
"""

import pytest
import torch
import variants
from bench.config.schemas import ModelConfig
from bench.inputs.models import load_tokenizer, tiny_model
from bench.results.adapter_files import save_adapter
from bench.testing import check_variant
from torch import nn
from variants.base import Targets

from peft_bench_pissa import PiSSA, PiSSALinear

TINY = ModelConfig(name="tiny", source="tiny")
TARGETS = Targets(modules=["query", "value"], head=["classifier"])


def test_contract():
    check_variant(PiSSA, {"r": 4})  # tolerances: PiSSA.check_options


def test_registered_through_the_entry_point():
    assert "pissa" in variants.available(), (
        "install this package first (pip install -e .): the entry point registers it"
    )
    assert variants.get("pissa") is PiSSA


def test_initialisation_is_the_principal_part_of_w():
    torch.manual_seed(0)
    linear = nn.Linear(32, 24)
    w = linear.weight.detach().clone()
    layer = PiSSALinear(linear, r=4, alpha=2.0)
    u, s, vh = torch.linalg.svd(w, full_matrices=False)
    principal = u[:, :4] @ torch.diag(s[:4]) @ vh[:4]
    torch.testing.assert_close(layer.delta_weight(), principal, rtol=0, atol=1e-5)
    torch.testing.assert_close(layer.base_layer.weight, w - principal, rtol=0, atol=1e-5)
    # The residual keeps the tail of the spectrum: its largest singular value is W's fifth.
    torch.testing.assert_close(
        torch.linalg.svdvals(layer.base_layer.weight)[:3], s[4:7], rtol=1e-4, atol=1e-6
    )
    assert layer.principal_energy == pytest.approx(float((s[:4] ** 2).sum() / (s**2).sum()))
    assert not layer.base_layer.weight.requires_grad and layer.lora_A.requires_grad


def test_rank_larger_than_the_layer_is_refused():
    with pytest.raises(ValueError, match="rank r=40 must be in 1..24"):
        PiSSALinear(nn.Linear(32, 24), r=40, alpha=40.0)


def test_peft_loads_the_saved_adapter(tmp_path):
    """peft's PiSSA init on the original base + our trained A, B reproduce our outputs."""
    peft = pytest.importorskip("peft")
    batch = dict(
        load_tokenizer(TINY)(
            ["a gripping film", "dull and long", "loved it"], padding=True, return_tensors="pt"
        )
    )
    variant = PiSSA(PiSSA.Config(r=4, alpha=8.0))
    model = variant.apply(tiny_model(TINY, 2, seed=0), TARGETS)
    optimizer = torch.optim.AdamW(variant.param_groups(model, 1e-2, 0.0))
    for _ in range(3):
        model(**batch, labels=torch.tensor([1, 0, 1])).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    save_adapter(tmp_path, variant.adapter_state_dict(model), variant.adapter_config(model, "tiny"))
    theirs = peft.PeftModel.from_pretrained(tiny_model(TINY, 2, seed=0), str(tmp_path)).eval()
    with torch.no_grad():
        ours_h = model.eval()(**batch, output_hidden_states=True).hidden_states[-1]
        theirs_h = theirs(**batch, output_hidden_states=True).hidden_states[-1]
        base_h = tiny_model(TINY, 2, seed=0).eval()(**batch, output_hidden_states=True).hidden_states[-1]
    assert (ours_h - base_h).abs().max() > 1e-2  # training moved the model far beyond the tolerance
    torch.testing.assert_close(theirs_h, ours_h, rtol=1e-4, atol=1e-5)
