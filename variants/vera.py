"""VeRA: Vector-based Random Matrix Adaptation (Kopiczko et al., 2024, arXiv:2310.11454).

    h = W x + lambda_b * (B (lambda_d * (A dropout(x))))

One pair of frozen random matrices is shared by every adapted layer: A (r x max_in) and B (max_out x r),
the largest input and output sizes among the targets; a layer of size out x in uses A[:, :in] and
B[:out, :]. Both are kaiming-uniform (a=0, fan_in), drawn A then B from a CPU ``torch.Generator`` seeded
with ``projection_prng_key``: the same draws as peft, so a peft VeRA model of the same base gets the same
A and B. Each layer trains two vectors: lambda_d (r, init d_initial = 0.1) and lambda_b (out, init 0), so
the adapted model equals the base model at initialisation.
Two ways to compute the update, chosen per forward by ``merge_is_cheaper`` (same result, another
rounding): two skinny matmuls per token (A x, then B), or forming the update
lambda_b * (B (lambda_d * A)) once and adding it to W for a single matmul (backward then keeps two
out x in matrices, W + update and B (lambda_d * A), instead of token x r activations).
Saved as a peft VeRA adapter (``vera_lambda_b``, ``vera_lambda_d`` per layer, plus ``base_model.vera_A``
and ``base_model.vera_B`` when ``save_projection``; without them peft regenerates A and B from the key).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from variants.base import AdapterLayer, Targets, Variant, VariantConfig, adapter_layers
from variants.registry import register

# Where peft's adapter_model.safetensors keeps the shared projections.
PROJECTION_KEYS = {"vera_A": "base_model.vera_A", "vera_B": "base_model.vera_B"}


@dataclass
class VeRAConfig(VariantConfig):
    name: str = "vera"
    lr: float = 4e-3  # VeRA paper, RoBERTa-base GLUE hyperparameters (SST-2); 1e-2 for most other tasks
    r: int = 256
    d_initial: float = 0.1
    dropout: float = 0.0
    projection_prng_key: int = 0
    save_projection: bool = True


class SharedProjections(nn.Module):
    """The frozen pair A (r x max_in), B (max_out x r) that every VeRA layer of a model slices."""

    def __init__(self, r: int, seed: int):
        super().__init__()
        self.r, self.seed = r, seed
        # Not in the model's state_dict: the variant saves them once, under peft's keys.
        self.register_buffer("vera_A", torch.empty(r, 0), persistent=False)
        self.register_buffer("vera_B", torch.empty(0, r), persistent=False)

    def generate(self, max_out: int, max_in: int, device: torch.device) -> None:
        generator = torch.Generator(device="cpu").manual_seed(self.seed)
        a = nn.init.kaiming_uniform_(torch.empty(self.r, max_in), generator=generator)
        b = nn.init.kaiming_uniform_(torch.empty(max_out, self.r), generator=generator)
        self.vera_A, self.vera_B = a.to(device), b.to(device)


def merge_is_cheaper(tokens: int, r: int, fan_in: int, fan_out: int, backward: bool) -> bool:
    """Whether forming the update beats the two skinny matmuls, by matmul FLOPs (elementwise work ignored).

    Factored: x A^T then (lambda_d * .) B^T, 2 T r (in + out) per forward; backward as much again (the
    gradient through B for lambda_d, through A for the input). Merged: P = B (lambda_d * A), 2 out in r,
    then x (W + lambda_b * P)^T, a matmul the base pays anyway; backward adds the update's gradient
    g^T x (2 T out in) and lambda_d's through B^T (2 out in r); the input's comes with the base's.
    """
    factored = 2 * tokens * r * (fan_in + fan_out)
    merged = 2 * fan_out * fan_in * r
    if backward:
        factored, merged = 2 * factored, 2 * merged + 2 * tokens * fan_out * fan_in
    return merged < factored


class VeRALinear(AdapterLayer):
    decay_exempt = frozenset({"vera_lambda_b", "vera_lambda_d"})  # scaling vectors (lambda_d starts at 0.1)

    def __init__(self, base_layer: nn.Linear, shared: SharedProjections, d_initial: float, dropout: float):
        super().__init__(base_layer)
        device = base_layer.weight.device
        self.shared = shared
        self.vera_lambda_b = nn.Parameter(torch.zeros(self.out_features, device=device))
        self.vera_lambda_d = nn.Parameter(torch.full((shared.r,), float(d_initial), device=device))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def projections(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This layer's slices of the shared pair: A[:, :in] (r x in) and B[:out, :] (out x r)."""
        return self.shared.vera_A[:, : self.in_features], self.shared.vera_B[: self.out_features]

    def merges_update(self, x: torch.Tensor) -> bool:
        """Whether this forward forms the update (``merge_is_cheaper``); never under active dropout,
        where the update sees dropout(x) and the base x."""
        if self.training and isinstance(self.dropout, nn.Dropout):
            return False
        trains = torch.is_grad_enabled() and self.vera_lambda_b.requires_grad
        tokens = x.numel() // self.in_features
        return merge_is_cheaper(tokens, self.shared.r, self.in_features, self.out_features, trains)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.merged:
            return self.base_layer(x)
        if self.merges_update(x):
            weight = self.base_weight() + self.delta_weight()
            return F.linear(x, weight.to(x.dtype), self.base_layer.bias)
        return self.factored_forward(x)

    def factored_forward(self, x: torch.Tensor) -> torch.Tensor:
        """W x + b + lambda_b * (B (lambda_d * (A dropout(x)))) with two skinny matmuls."""
        out = self.base_layer(x)
        a, b = (t.to(x.dtype) for t in self.projections())
        h = F.linear(self.dropout(x), a)  # in the compute dtype (autocast may differ from x's)
        h = F.linear(self.vera_lambda_d.to(h.dtype) * h, b)
        return torch.addcmul(out, self.vera_lambda_b.to(h.dtype), h)

    def delta_weight(self) -> torch.Tensor:
        """lambda_b * (B (lambda_d * A)): B is frozen, so backward forms one out x in x r product (the
        gradient of lambda_d * A), not two as (lambda_b * B) (lambda_d * A) would."""
        a, b = self.projections()
        return self.vera_lambda_b[:, None] * (b @ (self.vera_lambda_d[:, None] * a))

    def adapter_tensors(self) -> dict[str, torch.Tensor]:
        return {"vera_lambda_b": self.vera_lambda_b, "vera_lambda_d": self.vera_lambda_d}


def shared_projections(model: nn.Module) -> SharedProjections:
    found = [m for m in model.modules() if isinstance(m, SharedProjections)]
    if len(found) != 1:
        raise ValueError(f"expected one set of shared VeRA projections in the model, found {len(found)}")
    return found[0]


@register
class VeRA(Variant):
    name = "vera"
    Config = VeRAConfig
    peft_type = "VERA"
    key_hparams: ClassVar[tuple[str, ...]] = ("r",)
    config: VeRAConfig

    def apply(self, model: nn.Module, targets: Targets) -> nn.Module:
        """Wrap the targets around one shared pair A, B, drawn once the largest layer sizes are known."""
        c = self.config
        if c.r < 1:
            raise ValueError(f"VeRA rank r={c.r} must be a positive integer")
        self.shared = SharedProjections(c.r, c.projection_prng_key)
        super().apply(model, targets)
        layers = list(adapter_layers(model).values())
        max_out, max_in = max(m.out_features for m in layers), max(m.in_features for m in layers)
        self.shared.generate(max_out, max_in, layers[0].base_layer.weight.device)
        return model

    def make_layer(self, name: str, linear: nn.Linear) -> VeRALinear:
        return VeRALinear(linear, self.shared, self.config.d_initial, self.config.dropout)

    def saved_tensors(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """The lambdas and the head, plus the shared projections when ``save_projection`` (as peft)."""
        live = super().saved_tensors(model)
        if self.config.save_projection:
            shared = shared_projections(model)
            live.update({key: getattr(shared, attr) for attr, key in PROJECTION_KEYS.items()})
        return live

    def peft_options(self, model: nn.Module) -> dict[str, Any]:
        c = self.config
        return {
            "r": c.r,
            "d_initial": c.d_initial,
            "vera_dropout": c.dropout,
            "projection_prng_key": c.projection_prng_key,
            "save_projection": c.save_projection,
            "init_weights": True,
            "bias": "none",
            "fan_in_fan_out": False,
        }
