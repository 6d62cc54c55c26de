"""BitFit (Ben Zaken, Ravfogel and Goldberg, "BitFit: Simple Parameter-efficient Fine-tuning for
Transformer-based Masked Language-models", ACL 2022, arXiv:2106.10199): every bias of the model and the
classifier head train, every other weight stays frozen; the bias-only baseline of the AdaLoRA paper's
Table 1.

A bias is a parameter named ``bias`` of any module (linear layers and LayerNorms alike, the pooler's
too). peft has no such method (peft 0.21.2's LoRA ``bias="all"`` trains the same biases, but beside a
low-rank update): the adapter is saved ``modules_to_save``-style, each trained tensor under
``base_model.model.<parameter>``, with a small ``adapter_config.json`` naming the variant, and a run
reloads with ``bench.tools.reload.load_run``. Nothing to merge: no adapter layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from variants.base import Variant, VariantConfig, is_head
from variants.registry import register


@dataclass
class BitFitConfig(VariantConfig):
    name: str = "bitfit"
    lr: float = 1e-3  # the top of the paper's grid {1e-4, 4e-4, 7e-4, 1e-3} for BERT on GLUE
    targets: Any = "attention"  # unused: every bias trains (the head comes from the model config)


def is_bias(name: str) -> bool:
    """A bias parameter, by its name in ``named_parameters``."""
    return name == "bias" or name.endswith(".bias")


@register
class BitFit(Variant):
    name = "bitfit"
    Config = BitFitConfig
    wraps = ()  # no layer: the biases themselves train
    mergeable = False  # the trained biases are the model's own

    def freeze(self, model: nn.Module) -> None:
        """Freeze every parameter but the biases and the head."""
        for name, p in model.named_parameters():
            p.requires_grad_(is_bias(name) or is_head(name, self.targets.head))

    def saved_tensors(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """The head (as every variant saves it) and every bias, under ``base_model.model.<parameter>``."""
        live = super().saved_tensors(model)
        live.update({self.peft_prefix + n: p for n, p in model.named_parameters() if is_bias(n)})
        return live

    def adapter_config(self, model: nn.Module, base_model_name_or_path: str) -> dict[str, Any] | None:
        """Not a peft adapter: the variant, the base and what the file holds (no ``peft_type``)."""
        return {
            "variant": self.name,
            "base_model_name_or_path": base_model_name_or_path,
            "bias": "all",
            "modules_to_save": list(self.targets.head),
        }
