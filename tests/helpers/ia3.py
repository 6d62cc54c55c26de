"""An outside method the harness was not written for: IA3-style output scaling (Liu et al., 2022,
arXiv:2205.05638), h = l * (W x + b) with l (out, 1) starting at 1, as peft's IA3 on a non-feed-forward
layer. Its update scales the bias too, and its 2-D scale must not decay towards 0. Registered as
``out_scale``: the built-in ``ia3`` (variants/ia3.py) is the whole method.

Self-contained on purpose: tests/contract/test_one_file_additions.py copies this file into variants/ as is.
"""

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from variants.base import AdapterLayer, Variant, VariantConfig


@dataclass
class IA3Config(VariantConfig):
    name: str = "out_scale"
    lr: float = 1e-2
    targets: Any = "attention_all"


class IA3Linear(AdapterLayer):
    decay_exempt = frozenset({"ia3_l"})

    def __init__(self, base_layer: nn.Linear, scales_bias: bool = True):
        super().__init__(base_layer)
        self.scales_bias = scales_bias
        self.ia3_l = nn.Parameter(torch.ones(self.out_features, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base_layer(x)
        return out if self.merged else out * self.ia3_l.view(-1)

    def delta_weight(self) -> torch.Tensor:
        return (self.ia3_l - 1) * self.base_weight()

    def delta_bias(self) -> torch.Tensor | None:
        return (self.ia3_l.view(-1) - 1) * self.base_layer.bias if self.scales_bias else None

    def adapter_tensors(self) -> dict[str, torch.Tensor]:
        return {"ia3_l": self.ia3_l}


class IA3(Variant):
    name = "out_scale"
    Config = IA3Config

    def make_layer(self, name: str, linear: nn.Linear) -> IA3Linear:
        return IA3Linear(linear)
