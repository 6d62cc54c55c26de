"""OFT: Orthogonal Finetuning (Qiu et al., 2023, "Controlling Text-to-Image Diffusion by Orthogonal
Finetuning", NeurIPS 2023, arXiv:2306.07280), in the form peft 0.21.2's default ``OFTConfig`` builds:
OFTv2's input-centric rotation with the Cayley-Neumann parameterization (Qiu et al., 2025, "Orthogonal
Finetuning Made Scalable", arXiv:2506.19847; the block-diagonal OFT is BOFT's one-factor case, Liu et
al., ICLR 2024).

The frozen W (out x in) is turned by a block-diagonal R = diag(R_1, ..., R_k) of k = in / b blocks of size
b = ``oft_block_size`` (default 32), applied to the input:

    h = W (x R) + b_W,   merged W' = W R^T (the bias is unchanged)

Each block comes from a skew-symmetric Q (Q^T = -Q) through a Cayley map. Only Q's strict upper triangle
is trained and stored: ``oft_R.weight`` (k x b(b-1)/2, row-major order of ``torch.triu_indices(b, b,
1)``), zero at initialisation, so R = I and the model starts equal to the base. With
``use_cayley_neumann`` (peft's default) R is the truncated Neumann series of (I + Q)(I - Q)^-1:

    R = (I + Q)(I + Q + ... + Q^(m-1)) = I + 2 (Q + ... + Q^(m-1)) + Q^m,   m = max(terms - 1, 3)

with terms = ``num_cayley_neumann_terms`` (default 5: R = I + 2Q + 2Q^2 + 2Q^3 + Q^4; 2 terms give
I + 2Q; 1 term, R = I, is refused), near-orthogonal for small Q; without it R = (I - Q)(I + Q)^-1, exactly
orthogonal (note the other sign convention, as in peft). ``block_share`` trains one Q for all k blocks.
peft's defaults kept as they are: ``coft`` off, ``module_dropout`` 0, targets query and value for BERT.
Where the block size does not divide a target's input size, that layer uses the nearest divisor as peft
does (the lower one on a tie; the input size itself when the block is larger), with a notice.
Saved as a peft OFT adapter (``<module>.oft_R.weight``), with the ``peft_version`` whose form this is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from bench.log import log
from variants.base import AdapterLayer, Variant, VariantConfig
from variants.registry import register

# The peft release whose OFT parameterization this matches (peft reads it to tell the Cayley-Neumann
# form of 0.18 and later from the older one).
PEFT_FORM = "0.21.2"


@dataclass
class OFTConfig(VariantConfig):
    name: str = "oft"
    lr: float = 1e-4  # peft's method_comparison (MetaMathQA) trains OFT at 1e-4
    oft_block_size: int = 32
    use_cayley_neumann: bool = True
    num_cayley_neumann_terms: int = 5
    block_share: bool = False


def skew_symmetric(upper: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, size: int) -> torch.Tensor:
    """Q = U - U^T for each row of ``upper`` (k x n), U holding it in its strict upper triangle."""
    u = upper.new_zeros(upper.shape[0], size, size)
    u[:, rows, cols] = upper
    return u - u.transpose(-2, -1)


def cayley_neumann(q: torch.Tensor, terms: int) -> torch.Tensor:
    """(I + Q)(I - Q)^-1 by peft's truncated Neumann series of ``terms`` >= 2 terms (module docstring)."""
    r = torch.eye(q.shape[-1], device=q.device, dtype=q.dtype) + 2 * q
    if terms == 2:
        return r
    power = q
    for _ in range(2, max(terms - 1, 3)):
        power = power @ q
        r = r + 2 * power
    return r + power @ q


def cayley(q: torch.Tensor) -> torch.Tensor:
    """The exact Cayley map (I - Q)(I + Q)^-1: orthogonal for a skew-symmetric Q."""
    eye = torch.eye(q.shape[-1], device=q.device, dtype=q.dtype).expand_as(q)
    return torch.linalg.solve(eye + q, eye - q, left=False)


def fitted_block_size(in_features: int, block_size: int) -> int:
    """``block_size`` if it divides ``in_features``, else the nearest divisor (the lower one on a tie), and
    ``in_features`` itself when the block is larger: peft's choice, so its loader builds the same blocks."""
    if block_size >= in_features:
        return in_features
    divisors = [d for d in range(1, in_features + 1) if in_features % d == 0]
    lower = max(d for d in divisors if d <= block_size)
    higher = min(d for d in divisors if d >= block_size)
    return lower if block_size - lower <= higher - block_size else higher


class OFTLinear(AdapterLayer):
    """A linear layer whose input is rotated by a block-diagonal (near-)orthogonal R."""

    def __init__(self, base_layer: nn.Linear, block_size: int, neumann_terms: int | None, block_share: bool):
        super().__init__(base_layer)
        self.block_size, self.blocks = block_size, self.in_features // block_size
        self.neumann_terms = neumann_terms  # None: the exact Cayley map
        rows, cols = torch.triu_indices(block_size, block_size, 1, device=base_layer.weight.device)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)
        shape = (1 if block_share else self.blocks, block_size * (block_size - 1) // 2)
        self.oft_R = nn.Parameter(torch.zeros(shape, device=base_layer.weight.device))

    def rotation_blocks(self) -> torch.Tensor:
        """R_1 ... R_k (k x b x b); with block_share one Q for every block."""
        q = skew_symmetric(self.oft_R, self.rows, self.cols, self.block_size)
        r = cayley(q) if self.neumann_terms is None else cayley_neumann(q, self.neumann_terms)
        return r.expand(self.blocks, -1, -1)

    def rotation(self) -> torch.Tensor:
        """The block-diagonal R (in x in)."""
        return torch.block_diag(*self.rotation_blocks())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.merged:
            return self.base_layer(x)
        r = self.rotation_blocks()
        blocks = x.to(r.dtype).reshape(*x.shape[:-1], self.blocks, self.block_size)
        rotated = torch.einsum("...rk,rkc->...rc", blocks, r).reshape(x.shape)
        return self.base_layer(rotated.to(x.dtype))

    def merged_weight(self) -> torch.Tensor:
        """W R^T, formed as (R W^T)^T."""
        w = self.base_weight()
        r = self.rotation()
        return (r @ w.t().to(r.dtype)).t().to(w.dtype)

    def delta_weight(self) -> torch.Tensor:
        return self.merged_weight() - self.base_weight()

    def adapter_tensors(self) -> dict[str, torch.Tensor]:
        return {"oft_R.weight": self.oft_R}


@register
class OFT(Variant):
    name = "oft"
    Config = OFTConfig
    peft_type = "OFT"
    key_hparams: ClassVar[tuple[str, ...]] = ("oft_block_size",)
    config: OFTConfig

    def make_layer(self, name: str, linear: nn.Linear) -> OFTLinear:
        c = self.config
        if c.oft_block_size < 2:
            raise ValueError(f"oft_block_size {c.oft_block_size} must be 2 or more")
        if c.use_cayley_neumann and c.num_cayley_neumann_terms < 2:
            raise ValueError(
                f"num_cayley_neumann_terms {c.num_cayley_neumann_terms} must be 2 or more (1 term is R = I)"
            )
        block_size = fitted_block_size(linear.in_features, c.oft_block_size)
        if block_size != c.oft_block_size:
            log.info(
                "oft_block_size %d does not divide the input size %d of %s: blocks of %d there, as in peft",
                c.oft_block_size, linear.in_features, name, block_size,
            )  # fmt: skip
        terms = c.num_cayley_neumann_terms if c.use_cayley_neumann else None
        return OFTLinear(linear, block_size, terms, c.block_share)

    def peft_options(self, model: nn.Module) -> dict[str, Any]:
        c = self.config
        return {
            "r": 0,  # peft takes the block size or the number of blocks, never both
            "oft_block_size": c.oft_block_size,
            "use_cayley_neumann": c.use_cayley_neumann,
            "num_cayley_neumann_terms": c.num_cayley_neumann_terms,
            "block_share": c.block_share,
            "coft": False,
            "module_dropout": 0.0,
            "init_weights": True,
            "bias": "none",
            "fan_in_fan_out": False,
            "peft_version": PEFT_FORM,
        }
