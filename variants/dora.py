"""DoRA: Weight-Decomposed Low-Rank Adaptation (Liu et al., 2024, arXiv:2402.09353).

    W' = m * (W + s B A) / n,   n = ||W + s B A||_row   (L2 norm of each output row, over the input dim)
    h  = (m / n) * (W x + s B A x) + bias

The direction W + s B A is LoRA's (A, B, s, rsLoRA and init exactly as in ``variants.lora``); the magnitude
m (out) is a trained vector initialised to ||W||_row, so the adapted model equals the base model at init.
As the paper suggests (section 4.3), n is treated as a constant in backward: it is computed under
``no_grad`` in fp32, so autograd never saves the out x in matrix W + s B A. It is not even formed:

    n^2 = ||W||_row^2 + s * rowsum(B * (2 W A^T + s B (A A^T)))

costs an out x r and an r x r product instead of an out x in one, and ||W||_row^2 is cached while W is
unchanged (peft 0.21.2 ``DoraLinearLayer.get_weight_norm`` forms W + s B A in every forward).

With dropout > 0 in training, the output follows peft's formula (x_d = dropout(x)):

    h = W x + bias + (m / n - 1) * W x_d + (m / n) * s B A x_d

which reduces to the equation above when x_d = x (no dropout, or eval mode).
Saved as a peft LoRA adapter with ``use_dora: true`` (``lora_A.weight``, ``lora_B.weight``,
``lora_magnitude_vector``).
"""

from __future__ import annotations

import weakref
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
        self._base_norms: tuple[weakref.ref, int, int, torch.Tensor] | None = None
        self.magnitude = nn.Parameter(self.weight_norm())

    def base_row_norms_sq(self, w: torch.Tensor) -> torch.Tensor:
        """||W||_row^2 in fp32, cached while ``w`` is the same tensor with the same version and storage.

        A weight made anew in each call (a dequantized one) never hits the cache; merge and unmerge,
        which write through ``.data`` (no version bump), drop it.
        """
        cached = self._base_norms
        if cached is not None and cached[0]() is w and cached[1:3] == (w._version, w.data_ptr()):
            return cached[3]
        norms = w.float().square().sum(dim=1)
        self._base_norms = (weakref.ref(w), w._version, w.data_ptr(), norms)
        return norms

    @torch.no_grad()
    def weight_norm(self) -> torch.Tensor:
        """n = ||W + s B A||_row in fp32, outside autograd and autocast (a constant in backward)."""
        w = self.base_weight()
        with torch.autocast(w.device.type, enabled=False):
            a, b = self.lora_A.float(), self.lora_B.float()
            inner = torch.addmm(w.float() @ a.T, b, a @ a.T, beta=2, alpha=self.scaling)
            cross = (b * inner).sum(dim=1)  # 2 rowsum(W A^T * B) + s rowsum(B A A^T * B)
            return torch.add(self.base_row_norms_sq(w), cross, alpha=self.scaling).clamp_min_(0).sqrt_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.merged:
            return self.base_layer(x)
        dropout = self.training and isinstance(self.dropout, nn.Dropout)
        xd = self.dropout(x) if dropout else x
        a, b = self.lora_A.to(x.dtype), self.lora_B.to(x.dtype)
        wx = F.linear(xd, self.base_weight())
        lora = (F.linear(xd, a).reshape(-1, self.r), (b * self.scaling).T)
        h = torch.addmm(wx.reshape(-1, self.out_features), *lora).view(wx.shape)  # the add in the matmul
        scale = (self.magnitude / self.weight_norm()).to(h.dtype)
        if dropout:  # W x + bias + (m / n - 1) W x_d + (m / n) s B A x_d
            return torch.addcmul(self.base_layer(x) - wx, scale, h)
        bias = self.base_layer.bias
        return scale * h if bias is None else torch.addcmul(bias.to(h.dtype), scale, h)

    def merged_weight(self) -> torch.Tensor:
        direction = self.base_weight().float() + self.delta_weight()
        return (self.magnitude / self.weight_norm())[:, None] * direction

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (``torch.save`` of a whole model) without the cache, whose weak reference cannot be."""
        return {**super().__getstate__(), "_base_norms": None}

    def merge(self) -> None:
        super().merge()
        self._base_norms = None

    def unmerge(self) -> None:
        super().unmerge()
        self._base_norms = None

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
