"""Tests of the PiSSA plugin: peft-bench's contract test-kit (peft's loader included: the saved adapter,
loaded with ``PeftModel.from_pretrained`` on the original base, gives our logits), the paper's
initialisation.

Run from the package folder after ``pip install -e .`` (the entry-point test needs the install).
"""

import pytest
import torch
import variants
from bench.testing import check_variant
from torch import nn

from peft_bench_pissa import PiSSA, PiSSALinear


def test_contract():
    check_variant(PiSSA, {"r": 4})  # tolerances: PiSSA.check_options; peft_loads_the_saved_adapter runs too


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
