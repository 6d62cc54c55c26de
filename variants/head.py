"""Head-only baseline (linear probing): the encoder is frozen, only the classifier head is trained."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from variants.base import Variant, VariantConfig
from variants.registry import register


@dataclass
class HeadConfig(VariantConfig):
    name: str = "head"
    lr: float = 2e-3


@register
class Head(Variant):
    name = "head"
    Config = HeadConfig
    mergeable = False  # no adapter: the head is the model's own

    def make_layer(self, name: str, linear: nn.Linear) -> None:
        """No adapter layer: the encoder stays frozen as it is."""
        return None
