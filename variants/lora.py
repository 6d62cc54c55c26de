"""LoRA: Low-Rank Adaptation of Large Language Models (Hu et al., 2021, arXiv:2106.09685).

    h = W x + s * B A dropout(x),   s = alpha / r   (rsLoRA, Kalajdzievski 2023: s = alpha / sqrt(r))

W (out x in) is frozen; A (r x in) starts kaiming-uniform(a=sqrt(5)) (or N(0, (1/r)^2) with init=gaussian)
and B (out x r) starts at zero, so the adapted model equals the base model at initialisation.
Saved as a peft LoRA adapter (``lora_A.weight``, ``lora_B.weight``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from variants.base import AdapterLayer, Variant, VariantConfig
from variants.registry import register


@dataclass
class LoRAConfig(VariantConfig):
    name: str = "lora"
    lr: float = 5e-4  # LoRA paper, RoBERTa-base GLUE recipe (4e-4 .. 5e-4)
    r: int = 8
    alpha: float = 8.0
    dropout: float = 0.0
    use_rslora: bool = False
    init: str = "kaiming"  # kaiming | gaussian


INITS = ("kaiming", "gaussian")


def check_alpha(alpha: float) -> None:
    """ValueError unless ``alpha`` (the update's scale: alpha / r) is a finite number > 0."""
    if not (math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha={alpha} must be a finite number > 0 (it scales the update: alpha / r)")


class LoRALinear(AdapterLayer):
    def __init__(
        self, base_layer: nn.Linear, r: int, alpha: float, dropout: float, use_rslora: bool, init: str
    ):
        super().__init__(base_layer)
        limit = min(base_layer.in_features, base_layer.out_features)
        if not 0 < r <= limit:
            shape = f"{base_layer.in_features}->{base_layer.out_features}"
            raise ValueError(f"rank r={r} must be in 1..{limit} for a {shape} layer")
        check_alpha(alpha)
        if init not in INITS:
            raise ValueError(f"unknown LoRA init {init!r}; choose one of {', '.join(INITS)}")
        w = base_layer.weight
        self.r = r
        self.scaling = alpha / math.sqrt(r) if use_rslora else alpha / r
        self.lora_A = nn.Parameter(torch.empty(r, self.in_features, dtype=torch.float32, device=w.device))
        self.lora_B = nn.Parameter(torch.zeros(self.out_features, r, dtype=torch.float32, device=w.device))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        if init == "kaiming":
            nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        else:
            nn.init.normal_(self.lora_A, std=1 / r)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base_layer(x)
        if self.merged:
            return out
        a, b = self.lora_A.to(x.dtype), self.lora_B.to(x.dtype)
        return out + F.linear(F.linear(self.dropout(x), a), b) * self.scaling

    def delta_weight(self) -> torch.Tensor:
        return (self.lora_B @ self.lora_A) * self.scaling

    def adapter_tensors(self) -> dict[str, torch.Tensor]:
        return {"lora_A.weight": self.lora_A, "lora_B.weight": self.lora_B}


@register
class LoRA(Variant):
    name = "lora"
    Config = LoRAConfig
    peft_type = "LORA"
    key_hparams: ClassVar[tuple[str, ...]] = ("r",)
    config: LoRAConfig

    def lora_options(self) -> dict[str, Any]:
        """LoRALinear's keyword arguments from the config (shared by DoRA and QLoRA)."""
        c = self.config
        return dict(r=c.r, alpha=c.alpha, dropout=c.dropout, use_rslora=c.use_rslora, init=c.init)

    def make_layer(self, name: str, linear: nn.Linear) -> AdapterLayer:
        return LoRALinear(linear, **self.lora_options())

    def peft_options(self, model: nn.Module) -> dict[str, Any]:
        c = self.config
        return {
            "r": c.r,
            "lora_alpha": c.alpha,
            "bias": "none",
            "fan_in_fan_out": False,
            "lora_dropout": c.dropout,
            "use_rslora": c.use_rslora,
            "use_dora": False,
            "init_lora_weights": True if c.init == "kaiming" else "gaussian",
        }
