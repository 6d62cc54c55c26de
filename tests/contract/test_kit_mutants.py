"""Each check the kit gained, proved by a mutant that the kit without it passes and the kit with it fails.

- a dead adapter: LayerNorm tuning whose forward ignores its trained copy (only the head learns), and a
  LoRA that ignores A and B: ``every_trainable_tensor_learns``;
- an adapter peft cannot take as saved: a LoRA whose tensors have names peft does not know, and a config
  with fields LN_TUNING's lacks (LoRA's ``bias``, ``fan_in_fan_out``): ``peft_loads_the_saved_adapter``.

The LayerNorm method itself (tests/helpers/ln_tuning.py, written as a plugin with ``wraps`` and
``make_layer`` only) passes the whole kit, peft's loader included: same logits as peft's LN_TUNING.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from helpers.ln_tuning import LNTuning, LNTuningLayer
from torch import nn

from bench.testing import CHECKS, check_variant, run_check
from variants.lora import LoRA, LoRALinear

NEW_CHECKS = ("every_trainable_tensor_learns", "peft_loads_the_saved_adapter")


def passes_the_kit_without_the_new_checks(variant: type) -> None:
    for check in CHECKS:
        if check not in NEW_CHECKS:
            run_check(variant, check)


# -- dead adapters -------------------------------------------------------------------------------------
class DeadCopyLayer(LNTuningLayer):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base_layer(x)  # the bug: the trained copy is never used


class DeadLNTuning(LNTuning):
    def make_layer(self, name: str, module: nn.LayerNorm) -> DeadCopyLayer:
        return DeadCopyLayer(module)


class IgnoresABLayer(LoRALinear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base_layer(x)  # the bug: A and B never reach the output


class IgnoresAB(LoRA):
    def make_layer(self, name: str, linear: nn.Linear) -> IgnoresABLayer:
        return IgnoresABLayer(linear, **self.lora_options())


@pytest.mark.parametrize("mutant", [DeadLNTuning, IgnoresAB], ids=["ln_copy_unused", "lora_ignores_a_b"])
def test_the_kit_catches_a_dead_adapter(mutant):
    passes_the_kit_without_the_new_checks(mutant)
    run_check(mutant, "peft_loads_the_saved_adapter")  # peft gets the untrained tensors and agrees
    with pytest.raises(AssertionError, match="trainable tensors get no gradient after 3 steps"):
        run_check(mutant, "every_trainable_tensor_learns")


def test_a_tensor_that_never_moves_is_caught():
    """A gets gradients (once B has moved) but an optimizer group with lr 0: it never moves."""

    class StillA(LoRA):
        def param_groups(self, model, lr, weight_decay):
            a = {id(layer.lora_A) for layer in model.modules() if isinstance(layer, LoRALinear)}
            groups = [
                {**g, "params": [p for p in g["params"] if id(p) not in a]}
                for g in super().param_groups(model, lr, weight_decay)
            ]
            still = [p for p in model.parameters() if id(p) in a]
            return [*groups, {"params": still, "lr": 0.0, "weight_decay": 0.0}]

    never = r"4 trainable tensors never moved in 3 steps: \['bert.encoder.layer.0.attention.self.query.lora_A"
    with pytest.raises(AssertionError, match=never):
        run_check(StillA, "every_trainable_tensor_learns")


# -- adapters peft cannot take as saved ----------------------------------------------------------------
class RenamedLayer(LoRALinear):
    def adapter_tensors(self) -> dict[str, torch.Tensor]:
        return {"lora_down.weight": self.lora_A, "lora_up.weight": self.lora_B}  # not peft's names


class RenamedLoRA(LoRA):
    def make_layer(self, name: str, linear: nn.Linear) -> RenamedLayer:
        return RenamedLayer(linear, **self.lora_options())


class LoRAFieldsOnLNTuning(LNTuning):
    def peft_options(self, model: nn.Module) -> dict[str, Any]:
        return {"bias": "none", "fan_in_fan_out": False}  # what every adapter_config once carried


@pytest.mark.parametrize(
    ("mutant", "complaint"),
    [
        (RenamedLoRA, "Found missing adapter keys"),
        (LoRAFieldsOnLNTuning, r"Unexpected keyword arguments \['bias', 'fan_in_fan_out'\]"),
    ],
    ids=["tensor_names", "config_fields"],
)
def test_the_kit_catches_an_adapter_peft_cannot_take(mutant, complaint):
    passes_the_kit_without_the_new_checks(mutant)
    with pytest.raises(
        AssertionError, match=f"peft's loader complains about the saved adapter: .*{complaint}"
    ):
        run_check(mutant, "peft_loads_the_saved_adapter")


# -- a LayerNorm method, from make_layer alone ---------------------------------------------------------
def test_a_layernorm_method_passes_the_kit_and_matches_peft():
    check_variant(LNTuning)  # peft_loads_the_saved_adapter: same logits as peft's LN_TUNING


def test_skips_follow_declarations_not_names():
    class NothingToMerge(LoRA):
        mergeable = False

    reasons = {
        check: run_check(NothingToMerge, check) for check in ("merge_equals_unmerged", "save_load_round_trip")
    }
    assert reasons == {
        "merge_equals_unmerged": "NothingToMerge has nothing to merge (mergeable = False)",
        "save_load_round_trip": None,
    }
    assert run_check("head", "peft_loads_the_saved_adapter") == "Head saves no peft adapter (peft_type None)"
