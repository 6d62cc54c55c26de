"""peft's version of a variant (its twin): what ``bench speed`` times beside ours, and how.

A twin says how a peft user would train the same method on the same base: the base model peft starts
from, the peft model (``get_peft_model`` with the adapter config our variant saves), the optimizer, what
runs after each optimizer step, and why it cannot run on a device. ``PeftTwin`` is the default, and the
whole interface: a copy of the base, AdamW, nothing after a step; a variant without a ``peft_type`` has
no twin to run (``NO_PEFT_METHOD``). A method whose peft version needs more subclasses ``PeftTwin`` in its
own file (or a plugin's module) and registers it for its variant class:

    @twin_of(LoRAPlus)
    class LoRAPlusTwin(PeftTwin):
        def optimizer(self, peft_model, lr, weight_decay): ...   # peft's create_loraplus_optimizer

Subclasses of a variant share its twin unless they register one of their own, so a new method joins the
benchmark with no edit to it. The Variant contract (``variants.base``) knows nothing of this module.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from variants.base import Variant

NO_PEFT_METHOD = "peft has no such method"
_TWINS: dict[type[Variant], type[PeftTwin]] = {}


class PeftTwin:
    """peft's side of one variant in the speed benchmark; also the step hooks of its training step."""

    def __init__(self, variant: Variant):
        self.variant = variant

    @classmethod
    def benchmark_options(cls, total_steps: int) -> dict[str, Any]:
        """Options that put every timed step, ours and peft's, in the method's costliest phase."""
        return {}

    def unavailable(self, device: torch.device) -> str | None:
        """Why peft's version cannot run here (None: it can)."""
        return None if self.variant.peft_type else NO_PEFT_METHOD

    def base(self, base: nn.Module, device: torch.device) -> nn.Module:
        """The base model peft's version starts from: a copy of ``base`` (QLoRA: quantized)."""
        return copy.deepcopy(base).to(device)

    def model(self, ours: nn.Module, base: nn.Module) -> nn.Module:
        """peft's model on ``base`` (from ``self.base``), in training mode, from the peft config our
        variant saves for ``ours``."""
        from peft import get_peft_config, get_peft_model

        config = self.variant.adapter_config(ours, "")
        config.update(inference_mode=False)  # a saved adapter is frozen; this one trains
        for key in ("base_model_name_or_path", "rank_pattern"):  # no checkpoint; AdaLoRA's: from training
            config.pop(key, None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # transformers' deprecations, raised inside peft
            return get_peft_model(base, get_peft_config(config)).train()

    def optimizer(self, peft_model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
        """The optimizer a peft user would make (LoRA+: peft's create_loraplus_optimizer). peft's tensors
        carry no roles, so rank stands in: decay on matrices, none on vectors, which is the split
        ``Variant.param_groups`` makes for every built-in method (bench.benchmarks.speed's tests check it)."""
        params = [p for p in peft_model.parameters() if p.requires_grad]
        return torch.optim.AdamW(
            [
                {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
                {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
            ],
            lr=lr,
        )

    def extra_loss(self, peft_model: nn.Module) -> torch.Tensor | None:
        """None: peft's forward adds a method's extra loss itself (AdaLoRA's orthogonality term)."""
        return None

    def on_step_end(self, peft_model: nn.Module, step: int, total_steps: int) -> None:
        """What a peft user calls after each optimizer step (AdaLoRA: update_and_allocate)."""


def twin_of(variant_cls: type[Variant]) -> Callable[[type[PeftTwin]], type[PeftTwin]]:
    """Class decorator: register the decorated ``PeftTwin`` subclass as the twin of ``variant_cls``."""
    if not (isinstance(variant_cls, type) and issubclass(variant_cls, Variant)):
        raise TypeError(f"twin_of takes a Variant subclass, got {variant_cls!r}")

    def register(twin: type[PeftTwin]) -> type[PeftTwin]:
        if not (isinstance(twin, type) and issubclass(twin, PeftTwin)):
            raise TypeError(f"the twin of {variant_cls.__name__} must subclass PeftTwin, got {twin!r}")
        _TWINS[variant_cls] = twin
        return twin

    return register


def twin_class(variant_cls: type[Variant]) -> type[PeftTwin]:
    """The twin registered for ``variant_cls`` or its nearest base class; ``PeftTwin`` when none is."""
    return next((_TWINS[c] for c in variant_cls.__mro__ if c in _TWINS), PeftTwin)


def twin(variant: Variant) -> PeftTwin:
    """The twin of a built (and, for ``model``, applied) variant."""
    return twin_class(type(variant))(variant)
