"""DoRA: Weight-Decomposed Low-Rank Adaptation (Liu et al., 2024, arXiv:2402.09353).

    W' = m * (W + s B A) / n,   n = ||W + s B A||_row   (L2 norm of each output row, over the input dim)
    h  = (m / n) * (W x + s B A x) + bias

The direction W + s B A is LoRA's (A, B, s, rsLoRA and init exactly as in ``variants.lora``); the magnitude
m (out) is a trained vector initialised to ||W||_row, so the adapted model equals the base model at init.
As the paper suggests (section 4.3), n is treated as a constant in backward: it is computed under
``no_grad`` in fp32, so autograd never saves the out x in matrix W + s B A.

With dropout > 0 in training, the output follows peft's formula (x_d = dropout(x)):

    h = W x + bias + (m / n - 1) * W x_d + (m / n) * s B A x_d

which reduces to the equation above when x_d = x (no dropout, or eval mode).
Saved as a peft LoRA adapter with ``use_dora: true`` (``lora_A.weight``, ``lora_B.weight``,
``lora_magnitude_vector``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from variants.base import AdapterLayer
from variants.lora import LoRA, LoRAConfig, LoRALinear
from variants.registry import register


@dataclass
class DoRAConfig(LoRAConfig):
    name: str = "dora"
    lr: float = 5e-4  # the DoRA paper reuses LoRA's settings; LoRA's RoBERTa-base GLUE recipe (4e-4 .. 5e-4)


class DoRALinear(LoRALinear):
    decay_exempt = frozenset({"lora_magnitude_vector"})  # m starts at ||W||_row, not at zero

    def __init__(
        self, base_layer: nn.Linear, r: int, alpha: float, dropout: float, use_rslora: bool, init: str
    ):
        super().__init__(base_layer, r, alpha, dropout, use_rslora, init)
        self.magnitude = nn.Parameter(self.weight_norm())

    @torch.no_grad()
    def weight_norm(self) -> torch.Tensor:
        """n = ||W + s B A||_row in fp32, outside autograd and autocast (a constant in backward)."""
        w = self.base_weight()
        with torch.autocast(w.device.type, enabled=False):
            direction = torch.addmm(w.float(), self.lora_B.float(), self.lora_A.float(), alpha=self.scaling)
            return torch.linalg.vector_norm(direction, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.merged:
            return self.base_layer(x)
        dropout = self.training and isinstance(self.dropout, nn.Dropout)
        xd = self.dropout(x) if dropout else x
        a, b = self.lora_A.to(x.dtype), self.lora_B.to(x.dtype)
        wx = F.linear(xd, self.base_weight())
        h = wx + F.linear(F.linear(xd, a), b * self.scaling)
        scale = (self.magnitude / self.weight_norm()).to(h.dtype)
        if dropout:  # W x + bias + (m / n - 1) W x_d + (m / n) s B A x_d
            return torch.addcmul(self.base_layer(x) - wx, scale, h)
        bias = self.base_layer.bias
        return scale * h if bias is None else torch.addcmul(bias.to(h.dtype), scale, h)

    def merged_weight(self) -> torch.Tensor:
        direction = self.base_weight().float() + self.delta_weight()
        return (self.magnitude / self.weight_norm())[:, None] * direction

    def adapter_tensors(self) -> dict[str, torch.Tensor]:
        return {**super().adapter_tensors(), "lora_magnitude_vector": self.magnitude}


@register
class DoRA(LoRA):
    name = "dora"
    Config = DoRAConfig
    config: DoRAConfig

    def make_layer(self, name: str, linear: nn.Linear) -> AdapterLayer:
        return DoRALinear(linear, **self.lora_options())

    def peft_options(self, model: nn.Module) -> dict[str, Any]:
        return {**super().peft_options(model), "use_dora": True}
