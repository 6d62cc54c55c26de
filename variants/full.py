"""Full fine-tuning baseline: every parameter of the model is trained (Devlin et al., 2019)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from variants import register
from variants.base import PEFT_PREFIX, Targets, Variant, VariantConfig


@dataclass
class FullConfig(VariantConfig):
    name: str = "full"
    lr: float = 2e-5  # BERT / RoBERTa fine-tuning range 1e-5 .. 5e-5


@register
class Full(Variant):
    name = "full"
    Config = FullConfig

    def apply(self, model: nn.Module, targets: Targets) -> nn.Module:
        self.targets = targets
        for p in model.parameters():
            p.requires_grad_(True)
        return model

    def _live_tensors(self, model: nn.Module):
        return {PEFT_PREFIX + n: p for n, p in model.named_parameters()}
