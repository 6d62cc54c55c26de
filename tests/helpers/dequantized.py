"""QLoRA's reference base: a base model whose target weights went through NF4 and back."""

import copy

import torch
from torch import nn

from variants.base import Targets, matches
from variants.nf4 import dequantize_nf4, quantize_nf4


def dequantized_copy(model: nn.Module, targets: Targets) -> nn.Module:
    """A copy of ``model`` with every target weight replaced by dequant(quant(W)): what QLoRA's output at
    initialisation equals, and the base on which peft's LoRA computes what QLoRA does."""
    twin = copy.deepcopy(model)
    for name, module in twin.named_modules():
        if isinstance(module, nn.Linear) and matches(name, targets.modules):
            with torch.no_grad():
                module.weight.copy_(dequantize_nf4(quantize_nf4(module.weight)))
    return twin
