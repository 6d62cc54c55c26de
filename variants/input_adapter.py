"""The input-level kind of method: an ``InputAdapter`` rewrites the model's keyword inputs before its forward.

Prompt tuning (Lester et al., 2021) changes the sequence, not a layer: it prepends learned virtual token
embeddings to the input embeddings and extends the attention mask. Such a method returns its adapter from
``Variant.make_input_adapter``; ``Variant.apply`` attaches it to the model (``attach_input_adapter``): it
becomes the submodule ``model.input_adapter`` (its parameters train, move and count with the model's) and a
forward pre-hook passes every call's keyword inputs through it, so ``model(**batch)`` runs it wherever the
harness calls the model. Its tensors are saved under the full keys it names (peft's ``prompt_embeddings``);
it has nothing to merge.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import nn

INPUT_ADAPTER = "input_adapter"  # the attribute of the model that holds its InputAdapter


class InputAdapter(nn.Module, ABC):
    """An input-level method's trainable part: rewrites the keyword inputs of the model's forward before
    the model sees them; the model's layers stay as they are."""

    @abstractmethod
    def forward(self, model: nn.Module, inputs: dict[str, Any]) -> dict[str, Any]:
        """The keyword inputs ``model``'s forward gets instead of ``inputs`` (``input_ids``,
        ``attention_mask``, ..., ``labels``)."""

    @abstractmethod
    def adapter_tensors(self) -> dict[str, torch.Tensor]:
        """Trainable tensors under their full keys in peft's adapter file, e.g. {'prompt_embeddings': P}."""


def _rewrite_inputs(model: nn.Module, args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
    """The forward pre-hook of a model with an InputAdapter: its keyword inputs, rewritten."""
    if args:
        raise TypeError(
            f"{type(model).__name__} has an input adapter: call it with keyword inputs (model(**batch)), "
            f"not {len(args)} positional ones"
        )
    return args, getattr(model, INPUT_ADAPTER)(model, kwargs)


def attach_input_adapter(model: nn.Module, adapter: InputAdapter) -> None:
    """Make ``adapter`` the submodule ``model.input_adapter`` (so its parameters train, move and count
    with the model's) and run it before every forward of ``model``."""
    if hasattr(model, INPUT_ADAPTER):
        raise ValueError(f"{type(model).__name__} already has an input adapter")
    setattr(model, INPUT_ADAPTER, adapter)
    model.register_forward_pre_hook(_rewrite_inputs, with_kwargs=True)


def input_adapters(model: nn.Module) -> dict[str, InputAdapter]:
    """Every InputAdapter of ``model`` by module name."""
    return {name: m for name, m in model.named_modules() if isinstance(m, InputAdapter)}
