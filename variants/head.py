"""Head-only baseline (linear probing): the encoder is frozen, only the classifier head is trained."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from variants import register
from variants.base import Targets, Variant, VariantConfig, freeze_all_but_head


@dataclass
class HeadConfig(VariantConfig):
    name: str = "head"
    lr: float = 2e-3


@register
class Head(Variant):
    name = "head"
    Config = HeadConfig

    def apply(self, model: nn.Module, targets: Targets) -> nn.Module:
        self.targets = targets
        freeze_all_but_head(model, targets.head)
        return model
