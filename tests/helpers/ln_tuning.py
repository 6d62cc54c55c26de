"""A method the contract once assumed away, as a plugin author writes it from the docs: LayerNorm tuning
(Zhao et al., 2023, arXiv:2312.11420; peft 0.21.2's ``LN_TUNING``).

Each target LayerNorm keeps a trainable copy of itself (``ln_tuning_layers``: weight and bias, starting
equal to the frozen ones) and normalises with the copy; merging writes the copy's weight and bias into the
base layer. The variant declares the module type it wraps (``wraps``) and writes ``make_layer``, nothing
else: ``Variant.apply`` wraps every target LayerNorm, ``adapter_config`` writes the fields every peft
config has (LN_TUNING's has no others), and the saved tensors carry peft's names, so
``peft.PeftModel.from_pretrained`` loads them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from variants.base import AdapterLayer, Variant, VariantConfig


@dataclass
class LNTuningConfig(VariantConfig):
    name: str = "ln_tuning"
    lr: float = 1e-3
    targets: Any = "LayerNorm"  # every LayerNorm of a BERT-like model (embeddings and both per layer)


class LNTuningLayer(AdapterLayer):
    """A frozen LayerNorm and its trainable copy, used in its place."""

    def __init__(self, base_layer: nn.LayerNorm):
        super().__init__(base_layer)
        self.ln_tuning_layers = copy.deepcopy(base_layer).requires_grad_(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base_layer(x) if self.merged else self.ln_tuning_layers(x)

    def merged_weight(self) -> torch.Tensor:
        return self.ln_tuning_layers.weight  # a replacement, written exactly

    def merged_bias(self) -> torch.Tensor:
        return self.ln_tuning_layers.bias

    def delta_weight(self) -> torch.Tensor:
        return self.ln_tuning_layers.weight - self.base_layer.weight

    def delta_bias(self) -> torch.Tensor:
        return self.ln_tuning_layers.bias - self.base_layer.bias

    def adapter_tensors(self) -> dict[str, torch.Tensor]:
        return {
            "ln_tuning_layers.weight": self.ln_tuning_layers.weight,
            "ln_tuning_layers.bias": self.ln_tuning_layers.bias,
        }


class LNTuning(Variant):
    name = "ln_tuning"
    Config = LNTuningConfig
    wraps = (nn.LayerNorm,)
    peft_type = "LN_TUNING"

    def make_layer(self, name: str, module: nn.LayerNorm) -> LNTuningLayer:
        return LNTuningLayer(module)
