"""LoKr: a Kronecker product of a small matrix and a low-rank factor (Yeh et al., "Navigating
Text-To-Image Customization: From LyCORIS Fine-Tuning to Model Evaluation", ICLR 2024, arXiv:2309.14859),
applied to a linear layer as peft 0.21.2 (``LoKrConfig``) applies it:

    dW = s (W1 ⊗ W2),   s = alpha / r;   h = W x + b + dW x

The layer sizes are factored, out = out_l * out_k and in = in_m * in_n (``factorization``: with
decompose_factor -1 the divisor pair nearest the square root, the smaller first; with a factor f > 0, f
itself when it divides the size, else the largest divisor up to f and the square root). W1 is out_l x in_m
and W2 out_k x in_n. W2 is low-rank, W2a (out_k x r) W2b (r x in_n), when r < max(out_k, in_n) / 2, and
full otherwise; W1 likewise, W1a W1b, only with ``decompose_both`` (peft's default leaves it full).
Initialisation (peft's ``init_weights``): ``init=default`` (True) starts W1 (or W1a) at zero and the other
factors kaiming-uniform (a = sqrt(5)); ``init=lycoris`` ("lycoris") starts W2 (or W2b) at zero and the
others kaiming-uniform. Either way the model starts equal to the base. The factors are drawn in the order
W1 (a, b), W2 (a, b), as peft draws them, so one seed gives peft's initial factors.
Module and rank dropout as every LyCORIS layer (``variants.loha.LycorisLinear``); the kept rows are
rescaled only with ``rank_dropout_scale``.
Saved as a peft LoKr adapter (``lokr_w1`` or ``lokr_w1_a``/``lokr_w1_b``, ``lokr_w2`` or
``lokr_w2_a``/``lokr_w2_b``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from variants.loha import LycorisConfig, LycorisLinear, LycorisVariant, lycoris_factor
from variants.registry import register

# Which factors start at zero, by init: the update's first factor (peft's default) or its second.
ZERO_AT_INIT = {"default": ("lokr_w1", "lokr_w1_a"), "lycoris": ("lokr_w2", "lokr_w2_b")}


@dataclass
class LoKrConfig(LycorisConfig):
    name: str = "lokr"
    # peft's method_comparison (MetaMathQA, Llama-3.2-3B) trains LoKr (r 32, alpha 64, decompose_factor -1)
    # at its default 1e-4.
    lr: float = 1e-4
    decompose_both: bool = False
    decompose_factor: int = -1
    rank_dropout_scale: bool = False
    init: str = "default"  # default | lycoris


def factorization(dimension: int, factor: int = -1) -> tuple[int, int]:
    """``dimension`` as m * n, peft 0.21.2's rule: with ``factor`` -1, the divisor pair nearest the square
    root (m <= n); with ``factor`` > 0, (factor, dimension / factor) when it divides ``dimension``, else m
    the largest divisor up to both ``factor`` and the square root. 128 -> (8, 16); (128, 4) -> (4, 32)."""
    if factor != -1 and factor < 1:
        raise ValueError(f"decompose_factor={factor} must be -1 (near the square root) or a positive integer")
    if factor > 0 and dimension % factor == 0:
        return factor, dimension // factor
    limit = dimension if factor == -1 else factor
    m = max(d for d in range(1, math.isqrt(dimension) + 1) if dimension % d == 0 and d <= limit)
    return m, dimension // m


class LoKrLinear(LycorisLinear):
    def __init__(
        self,
        base_layer: nn.Linear,
        r: int,
        alpha: float,
        rank_dropout: float,
        module_dropout: float,
        rank_dropout_scale: bool,
        decompose_both: bool,
        decompose_factor: int,
        init: str,
    ):
        super().__init__(base_layer, r, alpha, rank_dropout, module_dropout, rank_dropout_scale)
        if init not in ZERO_AT_INIT:
            raise ValueError(f"unknown LoKr init {init!r}; choose one of {', '.join(ZERO_AT_INIT)}")
        out_l, out_k = factorization(self.out_features, decompose_factor)
        in_m, in_n = factorization(self.in_features, decompose_factor)
        self.w1_keys = self.add_factor("lokr_w1", out_l, in_m, decompose_both and r < max(out_l, in_m) / 2)
        self.w2_keys = self.add_factor("lokr_w2", out_k, in_n, r < max(out_k, in_n) / 2)
        for key in (*self.w1_keys, *self.w2_keys):
            if key in ZERO_AT_INIT[init]:
                nn.init.zeros_(getattr(self, key))
            else:
                nn.init.kaiming_uniform_(getattr(self, key), a=math.sqrt(5))

    def add_factor(self, key: str, rows: int, cols: int, low_rank: bool) -> tuple[str, ...]:
        """Register the factor ``key`` (rows x cols), as ``key_a`` (rows x r) and ``key_b`` (r x cols)
        when ``low_rank``; return the names registered."""
        device = self.base_layer.weight.device
        shapes = {f"{key}_a": (rows, self.r), f"{key}_b": (self.r, cols)} if low_rank else {key: (rows, cols)}
        for name, shape in shapes.items():
            self.register_parameter(name, lycoris_factor(*shape, device))
        return tuple(shapes)

    def factor(self, keys: tuple[str, ...]) -> torch.Tensor:
        """W1 or W2: the full matrix, or the product of its two low-rank factors."""
        tensors = [getattr(self, key) for key in keys]
        return tensors[0] if len(tensors) == 1 else tensors[0] @ tensors[1]

    def delta_weight(self) -> torch.Tensor:
        """s (W1 ⊗ W2)."""
        return torch.kron(self.factor(self.w1_keys), self.factor(self.w2_keys)) * self.scaling

    def adapter_tensors(self) -> dict[str, torch.Tensor]:
        return {key: getattr(self, key) for key in (*self.w1_keys, *self.w2_keys)}


@register
class LoKr(LycorisVariant):
    name = "lokr"
    Config = LoKrConfig
    peft_type = "LOKR"
    config: LoKrConfig

    def make_layer(self, name: str, linear: nn.Linear) -> LoKrLinear:
        c = self.config
        return LoKrLinear(
            linear,
            c.r,
            c.alpha,
            c.rank_dropout,
            c.module_dropout,
            c.rank_dropout_scale,
            c.decompose_both,
            c.decompose_factor,
            c.init,
        )

    def peft_options(self, model: nn.Module) -> dict[str, Any]:
        c = self.config
        return {
            **super().peft_options(model),
            "decompose_both": c.decompose_both,
            "decompose_factor": c.decompose_factor,
            "rank_dropout_scale": c.rank_dropout_scale,
            "init_weights": True if c.init == "default" else "lycoris",
        }
