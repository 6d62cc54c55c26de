"""PiSSA: Principal Singular Values and Singular Vectors Adaptation (Meng, Wang & Zhang, NeurIPS 2024,
arXiv:2404.02948), as a peft-bench variant plugin.

LoRA's architecture, started on the principal part of W instead of zero. With the SVD W = U S V^T of the
frozen weight (out x in) and s = alpha / r:

    A = diag(sqrt(S[:r] / s)) V[:, :r]^T     (r x in)       B = U[:, :r] diag(sqrt(S[:r] / s))     (out x r)
    W_res = W - s B A                         (frozen; replaces W in the base layer)
    h = W_res x + s B A x

so s B A = U_r S_r V_r^T at initialisation and the output equals the base model's up to float rounding.
A and B (and the classifier head) are trained; the residual stays frozen. The arithmetic follows peft's
``init_lora_weights="pissa"`` (exact SVD) step by step, so the adapter is saved as a peft LoRA adapter with
that setting, and ``peft.PeftModel.from_pretrained`` on the original base rebuilds the same residual.

Registered through the entry point in pyproject.toml, not with ``@register``: importing this module
leaves peft-bench's registry alone, and peft-bench finds the class when it discovers plugins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from variants.base import AdapterLayer, Variant, VariantConfig

__all__ = ["PiSSA", "PiSSAConfig", "PiSSALinear"]


@dataclass
class PiSSAConfig(VariantConfig):
    name: str = "pissa"
    # The adapter starts on the largest components of W, so it wants a smaller step than LoRA's zero-started
    # B (the paper's LLM runs use a full-fine-tuning rate, 2e-5); 2e-4 is our default at BERT sizes.
    lr: float = 2e-4
    r: int = 8
    alpha: float = 8.0


class PiSSALinear(AdapterLayer):
    """A frozen linear layer whose principal rank-r part is moved into trainable factors B A."""

    def __init__(self, base_layer: nn.Linear, r: int, alpha: float):
        super().__init__(base_layer)
        limit = min(base_layer.in_features, base_layer.out_features)
        if not 0 < r <= limit:
            raise ValueError(
                f"rank r={r} must be in 1..{limit} for a {self.in_features} -> {self.out_features} layer"
            )
        weight = base_layer.weight
        if weight.dtype not in (torch.float32, torch.float16, torch.bfloat16):
            raise TypeError(
                f"PiSSA needs a floating-point base weight, not {weight.dtype} (quantize the residual after)"
            )
        self.r = r
        self.scaling = alpha / r
        with torch.no_grad():
            w = weight.to(torch.float32)
            u, s, vh = torch.linalg.svd(w, full_matrices=False)
            root = torch.diag(torch.sqrt(s[:r] / self.scaling))
            self.lora_A = nn.Parameter(root @ vh[:r])  # r x in
            self.lora_B = nn.Parameter(u[:, :r] @ root)  # out x r
            weight.copy_((w - self.scaling * self.lora_B @ self.lora_A).to(weight.dtype))  # W_res
            # Share of ||W||_F^2 the adapter starts with (reported in metrics.json's variant_summary).
            self.principal_energy = float((s[:r] ** 2).sum() / (s**2).sum())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base_layer(x)
        if self.merged:
            return out
        a, b = self.lora_A.to(x.dtype), self.lora_B.to(x.dtype)
        return out + F.linear(F.linear(x, a), b) * self.scaling

    def delta_weight(self) -> torch.Tensor:
        return (self.lora_B @ self.lora_A) * self.scaling

    def adapter_tensors(self) -> dict[str, torch.Tensor]:
        return {"lora_A.weight": self.lora_A, "lora_B.weight": self.lora_B}


class PiSSA(Variant):
    name = "pissa"
    Config = PiSSAConfig
    peft_type = "LORA"
    key_hparams = ("r",)
    # W_res + s B A equals W up to float rounding, not exactly: the output at init gets a tolerance.
    check_options = {"init_atol": 1e-5}
    config: PiSSAConfig

    def make_layer(self, name: str, linear: nn.Linear) -> PiSSALinear:
        return PiSSALinear(linear, self.config.r, self.config.alpha)

    def summary(self, model: nn.Module) -> dict[str, Any]:
        energies = [m.principal_energy for m in model.modules() if isinstance(m, PiSSALinear)]
        return {"principal_energy": round(sum(energies) / len(energies), 6) if energies else None}

    def peft_options(self, model: nn.Module) -> dict[str, Any]:
        c = self.config
        return {
            "r": c.r,
            "lora_alpha": c.alpha,
            "lora_dropout": 0.0,
            "use_rslora": False,
            "use_dora": False,
            "init_lora_weights": "pissa",
        }
