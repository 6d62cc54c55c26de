"""Full fine-tuning baseline: every parameter of the model is trained (Devlin et al., 2019)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from variants.base import PEFT_PREFIX, Variant, VariantConfig
from variants.registry import register


@dataclass
class FullConfig(VariantConfig):
    name: str = "full"
    lr: float = 2e-5  # BERT / RoBERTa fine-tuning range 1e-5 .. 5e-5


@register
class Full(Variant):
    name = "full"
    Config = FullConfig
    mergeable = False  # the trained weights are the model's own

    def make_layer(self, name: str, linear: nn.Linear) -> None:
        """No adapter layer: the linear layers themselves train."""
        return None

    def freeze(self, model: nn.Module) -> None:
        """Nothing is frozen."""
        for p in model.parameters():
            p.requires_grad_(True)

    def saved_tensors(self, model: nn.Module):
        return {PEFT_PREFIX + n: p for n, p in model.named_parameters()}
