"""LoRA+: Efficient Low Rank Adaptation of Large Models (Hayou et al., 2024, arXiv:2402.12354).

    h = W x + s * B A dropout(x)   (LoRA's layer, unchanged),   lr(B) = ratio * lr(A)

The layers, initialisation and saved adapter are LoRA's (``variants.lora``); only the optimizer differs.
B, which starts at zero, gets a learning rate ``loraplus_lr_ratio`` times larger than A's. The groups follow
peft's ``create_loraplus_optimizer``: A and the other matrices (classifier head included) at lr; every
lora_B at lr * ratio; every other 1-D trainable tensor (biases of the head) at lr * ratio and no weight decay.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from variants.base import adapter_layers
from variants.lora import LoRA, LoRAConfig, LoRALinear
from variants.peft_twin import PeftTwin, twin_of
from variants.registry import register


@dataclass
class LoRAPlusConfig(LoRAConfig):
    name: str = "loraplus"
    lr: float = 2.5e-4  # LoRA+ README: eta_A about half of vanilla LoRA's lr (LoRA's 5e-4 / 2)
    loraplus_lr_ratio: float = 16.0  # 2^4


@register
class LoRAPlus(LoRA):
    name = "loraplus"
    Config = LoRAPlusConfig
    config: LoRAPlusConfig

    def param_groups(self, model: nn.Module, lr: float, weight_decay: float) -> list[dict]:
        """[others at lr, lora_B at lr * ratio, 1-D at lr * ratio without decay]; empty groups dropped."""
        ratio = self.config.loraplus_lr_ratio
        if ratio <= 0:
            raise ValueError(f"loraplus_lr_ratio={ratio} must be > 0 (LoRA+ uses ratios >= 1, 16 by default)")
        lora_b = {id(m.lora_B) for m in adapter_layers(model).values() if isinstance(m, LoRALinear)}
        groups = {"A": [], "B": [], "B_no_decay": []}
        for p in model.parameters():
            if not p.requires_grad:
                continue
            if p.ndim == 1:
                groups["B_no_decay"].append(p)
            else:
                groups["B" if id(p) in lora_b else "A"].append(p)
        settings = {"A": (lr, weight_decay), "B": (lr * ratio, weight_decay), "B_no_decay": (lr * ratio, 0.0)}
        return [
            {"params": params, "lr": settings[key][0], "weight_decay": settings[key][1]}
            for key, params in groups.items()
            if params
        ]


@twin_of(LoRAPlus)
class LoRAPlusTwin(PeftTwin):
    """peft's LoRA+ for bench speed: its LoRA, trained with its create_loraplus_optimizer."""

    variant: LoRAPlus

    def optimizer(self, peft_model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
        from peft.optimizers import create_loraplus_optimizer

        ratio = self.variant.config.loraplus_lr_ratio
        return create_loraplus_optimizer(
            peft_model, torch.optim.AdamW, lr=lr, loraplus_lr_ratio=ratio, loraplus_weight_decay=weight_decay
        )
