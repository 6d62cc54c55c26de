"""(IA)^3: Infused Adapter by Inhibiting and Amplifying Inner Activations (Liu et al., 2022, "Few-Shot
Parameter-Efficient Fine-Tuning is Better and Cheaper than In-Context Learning", NeurIPS 2022,
arXiv:2205.05638), as peft 0.21.2's ``IA3`` builds it.

Learned vectors rescale activations: the keys and values (l_k, l_v) and the input of the feed-forward
output layer (l_ff). With W (out x in) and b frozen:

    attention layer:     h = l * (W x + b),   l (out, 1): W' = l * W (rows), b' = l * b
    feed-forward layer:  h = W (l * x) + b,   l (1, in):  W' = W * l (columns), b' = b

Every vector starts at ones, so the adapted model equals the base model at initialisation. A target is a
feed-forward layer when its module name ends with one of ``feedforward`` (peft's ``feedforward_modules``,
matched as peft matches them: a plain ``endswith``); feed-forward names that are not among the targets
are ignored. The defaults are peft's for BERT (``TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING`` and
its feed-forward mapping): targets key, value, output.dense (both ``attention.output.dense`` and the
intermediate-to-hidden ``output.dense`` match it), output.dense treated as feed-forward. Merging computes
W' and b' as these products, as peft's merge does; unmerge restores the saved W and b exactly.
Saved as a peft IA3 adapter (``<module>.ia3_l``, shaped (out, 1) or (1, in) as above).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from variants.base import AdapterLayer, Variant, VariantConfig
from variants.peft_twin import PeftTwin, twin_of
from variants.registry import register


@dataclass
class IA3Config(VariantConfig):
    name: str = "ia3"
    lr: float = 3e-3  # the paper's T-Few recipe (section 3.3): Adafactor at 3e-3
    targets: Any = "key,value,output.dense"  # peft's IA3 targets for BERT
    feedforward: list[str] = field(default_factory=lambda: ["output.dense"])  # input-scaled targets


class IA3Linear(AdapterLayer):
    """A linear layer whose output (attention) or input (feed-forward) is rescaled by ``ia3_l``."""

    decay_exempt = frozenset({"ia3_l"})  # a scale starting at 1: decay would pull it towards 0

    def __init__(self, base_layer: nn.Linear, feedforward: bool):
        super().__init__(base_layer)
        self.feedforward = feedforward
        shape = (1, self.in_features) if feedforward else (self.out_features, 1)
        self.ia3_l = nn.Parameter(torch.ones(shape, device=base_layer.weight.device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.merged:
            return self.base_layer(x)
        scale = self.ia3_l.flatten()
        if self.feedforward:
            return self.base_layer((x.to(scale.dtype) * scale).to(x.dtype))
        out = self.base_layer(x)
        return (out * scale).to(out.dtype)

    def merged_weight(self) -> torch.Tensor:
        """W * l: l (out, 1) scales W's rows, l (1, in) its columns."""
        return self.base_weight() * self.ia3_l

    def delta_weight(self) -> torch.Tensor:
        return self.merged_weight() - self.base_weight()

    def scales_bias(self) -> bool:
        return not self.feedforward and self.base_layer.bias is not None

    def merged_bias(self) -> torch.Tensor | None:
        """l * b for an attention layer with a bias; None (b unchanged) otherwise."""
        return self.base_layer.bias * self.ia3_l.flatten() if self.scales_bias() else None

    def delta_bias(self) -> torch.Tensor | None:
        merged = self.merged_bias()
        return None if merged is None else merged - self.base_layer.bias

    def adapter_tensors(self) -> dict[str, torch.Tensor]:
        return {"ia3_l": self.ia3_l}


def is_feedforward(name: str, feedforward: list[str]) -> bool:
    """peft's feed-forward test for IA3: the module name ends with one of ``feedforward``."""
    return any(name.endswith(suffix) for suffix in feedforward)


@register
class IA3(Variant):
    name = "ia3"
    Config = IA3Config
    peft_type = "IA3"
    config: IA3Config

    def feedforward_modules(self) -> list[str]:
        """The configured feed-forward names that are among the targets (peft requires a subset)."""
        return [f for f in self.config.feedforward if f in self.targets.modules]

    def make_layer(self, name: str, linear: nn.Linear) -> IA3Linear:
        return IA3Linear(linear, feedforward=is_feedforward(name, self.feedforward_modules()))

    def peft_options(self, model: nn.Module) -> dict[str, Any]:
        return {
            "feedforward_modules": self.feedforward_modules(),
            "init_ia3_weights": True,
            "fan_in_fan_out": False,
        }


@twin_of(IA3)
class IA3Twin(PeftTwin):
    """peft's IA3 trained as ours is: its (out, 1) and (1, in) scales without weight decay."""

    def optimizer(self, peft_model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
        named = [(n, p) for n, p in peft_model.named_parameters() if p.requires_grad]
        exempt = {id(p) for n, p in named if p.ndim < 2 or ".ia3_l." in n}
        groups = [
            {"params": [p for _, p in named if id(p) not in exempt], "weight_decay": weight_decay},
            {"params": [p for _, p in named if id(p) in exempt], "weight_decay": 0.0},
        ]
        return torch.optim.AdamW(groups, lr=lr)
