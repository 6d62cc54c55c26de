"""QLoRA as LoRA: QLoRA's 4-bit NormalFloat base under LoRA's adapter, so that against ``lora`` only the
storage of the frozen weights differs.

QLoRA's recipe (Dettmers et al., 2023, arXiv:2305.14314: r 64 on every linear layer, dropout 0.05) trains
about 30x the weights LoRA's RoBERTa GLUE recipe does (Hu et al., 2021, Table 9: r 8, alpha 8, query and
value), so "qlora against lora" mixes quantization with capacity. This arm takes every adapter default
from ``LoRAConfig`` (rank, alpha, dropout, targets, lr) and quantizes exactly those targets, as
``variants.qlora`` does: what 4 bits cost in accuracy, at equal capacity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from variants.lora import LoRAConfig
from variants.qlora import QLoRA, QLoRAConfig
from variants.registry import register


@dataclass
class QLoRAAsLoRAConfig(QLoRAConfig):
    name: str = "qlora_as_lora"
    lr: float = LoRAConfig.lr
    r: int = LoRAConfig.r
    alpha: float = LoRAConfig.alpha
    dropout: float = LoRAConfig.dropout
    targets: Any = LoRAConfig.targets


@register
class QLoRAAsLoRA(QLoRA):
    name = "qlora_as_lora"
    Config = QLoRAAsLoRAConfig
    config: QLoRAAsLoRAConfig
