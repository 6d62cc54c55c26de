"""LoHa: a low-rank Hadamard product (Hyeon-Woo, Ye-Bin & Oh, "FedPara: Low-Rank Hadamard Product for
Communication-Efficient Federated Learning", ICLR 2022, arXiv:2108.06098), applied to a linear layer as
LyCORIS (Yeh et al., ICLR 2024, arXiv:2309.14859) and peft 0.21.2 (``LoHaConfig``) apply it:

    dW = s (W1a W1b) ⊙ (W2a W2b),   s = alpha / r;   h = W x + b + dW x

W1a, W2a (out x r) and W1b, W2b (r x in) are trained. W1a, W1b and W2a start kaiming-uniform (a = sqrt(5)),
drawn in that order, and W2b at zero (peft's ``init_weights=True``), so the model starts equal to the base.
The Hadamard product of two rank-r products reaches rank r^2 with the parameters of a rank-2r LoRA.

The LyCORIS layer that LoHa and LoKr (``variants.lokr``) share, ``LycorisLinear``: the dense update dW is
formed from the factors at each forward and applied as F.linear(x, dW). In training, as peft 0.21.2's
``LycorisLayer`` does:
- module dropout: one uniform draw u from torch's CPU generator per forward, even at probability 0, and
  the update is skipped unless u > module_dropout (so a seed gives peft's dropout masks downstream too);
- rank dropout (rank_dropout > 0): each output row of dW is kept when a CPU uniform draw exceeds
  rank_dropout; the kept rows are rescaled by 1 / (fraction kept) where the method says so (LoHa always,
  LoKr with ``rank_dropout_scale``).
Saved as a peft LoHa adapter (``hada_w1_a``, ``hada_w1_b``, ``hada_w2_a``, ``hada_w2_b``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from variants.base import AdapterLayer, Variant, VariantConfig
from variants.lora import check_alpha
from variants.registry import register


@dataclass
class LycorisConfig(VariantConfig):
    """The options LoHa and LoKr share (peft's defaults)."""

    r: int = 8
    alpha: float = 8.0
    rank_dropout: float = 0.0
    module_dropout: float = 0.0


@dataclass
class LoHaConfig(LycorisConfig):
    name: str = "loha"
    # peft's method_comparison (MetaMathQA, Llama-3.2-3B) trains LoHa (r 32, alpha 64) at its default 1e-4.
    lr: float = 1e-4


def lycoris_factor(rows: int, cols: int, device: torch.device) -> nn.Parameter:
    """An uninitialised fp32 factor (rows x cols) on ``device``."""
    return nn.Parameter(torch.empty(rows, cols, dtype=torch.float32, device=device))


class LycorisLinear(AdapterLayer):
    """A linear layer plus s * dW(factors), with LyCORIS's module and rank dropout in training.

    Subclasses create their factors and define ``delta_weight`` (scaled, without dropout) and
    ``adapter_tensors``.
    """

    def __init__(
        self,
        base_layer: nn.Linear,
        r: int,
        alpha: float,
        rank_dropout: float,
        module_dropout: float,
        rescale_rank_dropout: bool,
    ):
        super().__init__(base_layer)
        if r < 1:
            raise ValueError(f"rank r={r} must be a positive integer")
        check_alpha(alpha)
        for what, p in (("rank_dropout", rank_dropout), ("module_dropout", module_dropout)):
            if not 0 <= p < 1:
                raise ValueError(f"{what}={p} must be in [0, 1)")
        self.r = r
        self.scaling = alpha / r
        self.rank_dropout = rank_dropout
        self.module_dropout = module_dropout
        self.rescale_rank_dropout = rescale_rank_dropout

    def skips_update(self) -> bool:
        """Module dropout: in training, one CPU uniform draw per forward; skip unless it exceeds the rate."""
        return self.training and not torch.rand(1).item() > self.module_dropout

    def rank_mask(self, weight: torch.Tensor) -> torch.Tensor:
        """Rank dropout's (out, 1) mask of kept rows (rescaled by 1 / fraction kept when the method does)."""
        keep = (torch.rand(self.out_features) > self.rank_dropout).to(weight.dtype)
        if self.rescale_rank_dropout:
            keep = keep / keep.mean()
        return keep.to(weight.device)[:, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base_layer(x)
        if self.merged or self.skips_update():
            return out
        weight = self.delta_weight()
        if self.training and self.rank_dropout > 0:
            weight = weight * self.rank_mask(weight)
        return out + F.linear(x, weight.to(x.dtype))


class LoHaLinear(LycorisLinear):
    def __init__(
        self, base_layer: nn.Linear, r: int, alpha: float, rank_dropout: float, module_dropout: float
    ):
        super().__init__(base_layer, r, alpha, rank_dropout, module_dropout, rescale_rank_dropout=True)
        device, out, inp = base_layer.weight.device, self.out_features, self.in_features
        self.hada_w1_a = lycoris_factor(out, r, device)
        self.hada_w1_b = lycoris_factor(r, inp, device)
        self.hada_w2_a = lycoris_factor(out, r, device)
        self.hada_w2_b = lycoris_factor(r, inp, device)
        for factor in (self.hada_w1_a, self.hada_w1_b, self.hada_w2_a):
            nn.init.kaiming_uniform_(factor, a=math.sqrt(5))
        nn.init.zeros_(self.hada_w2_b)

    def delta_weight(self) -> torch.Tensor:
        """s (W1a W1b) ⊙ (W2a W2b)."""
        return (self.hada_w1_a @ self.hada_w1_b) * (self.hada_w2_a @ self.hada_w2_b) * self.scaling

    def adapter_tensors(self) -> dict[str, torch.Tensor]:
        return {
            "hada_w1_a": self.hada_w1_a,
            "hada_w1_b": self.hada_w1_b,
            "hada_w2_a": self.hada_w2_a,
            "hada_w2_b": self.hada_w2_b,
        }


class LycorisVariant(Variant):
    """What LoHa and LoKr share as variants: a peft LyCORIS adapter_config (r, alpha, the dropouts)."""

    key_hparams: ClassVar[tuple[str, ...]] = ("r",)
    config: LycorisConfig

    def peft_options(self, model: nn.Module) -> dict[str, Any]:
        c = self.config
        return {
            "r": c.r,
            "alpha": c.alpha,
            "rank_dropout": c.rank_dropout,
            "module_dropout": c.module_dropout,
            "rank_pattern": {},
            "alpha_pattern": {},
            "use_effective_conv2d": False,
        }


@register
class LoHa(LycorisVariant):
    name = "loha"
    Config = LoHaConfig
    peft_type = "LOHA"
    config: LoHaConfig

    def make_layer(self, name: str, linear: nn.Linear) -> LoHaLinear:
        c = self.config
        return LoHaLinear(linear, c.r, c.alpha, c.rank_dropout, c.module_dropout)

    def peft_options(self, model: nn.Module) -> dict[str, Any]:
        return {**super().peft_options(model), "init_weights": True}
