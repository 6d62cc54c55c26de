"""NF4 storage with double quantization, bit-compatible with bitsandbytes, in plain PyTorch on any device
(QLoRA: Dettmers et al., 2023, arXiv:2305.14314).

The format of bitsandbytes 0.50's ``quantize_4bit(w, blocksize=64, quant_type="nf4",
compress_statistics=True)``, which tests/unit/variants/test_nf4.py checks bit for bit on the CPU:

1. Flatten W (upcast to fp32) and cut it into blocks of 64, the last one possibly partial;
   ``absmax`` = max |w| of each block.
2. Each weight becomes the index of the NF4 value nearest to ``v = w * (1 / absmax)`` (in a partial last
   block ``v = w / absmax``): the thresholds are the fp32 midpoints ``(c[i] + c[i+1]) / 2``, and a v
   exactly on one takes the lower index. An all-zero block stores code 7 (0.0). Two codes per byte,
   high nibble first; an odd element count pads the last low nibble with code 7.
3. Double quantization: ``offset`` = fp32 mean of absmax; ``absmax - offset`` is cut into blocks of 256,
   each with an fp32 ``scale`` = its max |.|, and each value x is coded in 8 bits with the signed
   dynamic map (``dynamic_map()``) through a 16-bit grid: ``u = floor((x * (1 / scale) + 1) * 32767.5
   + 0.5)`` in fp32, and the code is the map entry nearest to the grid point ``u / 32767.5 - 1`` (so not
   always the entry nearest to x / scale). A block whose scale is 0 stores code 0.
4. Dequantize: ``absmax' = map[code8] * scale + offset`` and ``w' = NF4[code4] * absmax'``, each
   product and sum rounded to fp32 (no fused multiply-add), then cast to the requested dtype.

One difference: for an all-zero partial last block bitsandbytes stores absmax 1e-38, we store 0; the
dequantized weights are the same. Storage: 4 bits per weight, 8 bits per 64 weights, 32 bits per
64 * 256 weights and one fp32 offset, about 4.127 bits per parameter.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# The NF4 values (QLoRA appendix E, as bitsandbytes stores them in fp32).
NF4_VALUES = (
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
)  # fmt: skip
BLOCKSIZES = (32, 64, 128, 256, 512, 1024, 2048, 4096)
NESTED_BLOCKSIZE = 256  # absmax values per fp32 scale in the double quantization
GRID_HALF = 32767.5  # the 8-bit lookup's 16-bit grid: 65536 points spanning [-1, 1]


def dynamic_map() -> torch.Tensor:
    """bitsandbytes' signed 8-bit dynamic map (``create_dynamic_map(signed=True)``), 256 sorted fp32 values.

    Level e = 0..6 holds 2**(6-e) magnitudes: the midpoints of ``linspace(0.1, 1, 2**(6-e) + 1)`` times
    10**-e (64 values in [0.107, 0.993], 32 in [0.0114, 0.0986], ..., one at 5.5e-7). The map is those 127
    magnitudes with both signs, plus 0 and +1. Computed in fp32 on the CPU, in this order, to match bitwise.
    """
    magnitudes = []
    for e in range(7):
        edges = torch.linspace(0.1, 1.0, 2 ** (6 - e) + 1, dtype=torch.float32)
        magnitudes.append((edges[:-1] + edges[1:]) / 2 * 10.0**-e)
    pos = torch.cat(magnitudes)
    return torch.cat([-pos, pos, torch.tensor([0.0, 1.0])]).sort().values


@functools.cache
def _tables(device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per device: NF4 values, NF4 midpoints, the dynamic map and its 65536-entry grid lookup."""
    nf4 = torch.tensor(NF4_VALUES, dtype=torch.float32)
    dyn = dynamic_map()
    grid = torch.arange(65536, dtype=torch.float32) / GRID_HALF - 1.0
    grid_lut = torch.bucketize(grid, (dyn[1:] + dyn[:-1]) / 2).to(torch.uint8)
    return tuple(t.to(device) for t in (nf4, (nf4[1:] + nf4[:-1]) / 2, dyn, grid_lut))


@functools.cache
def _pair_table(device: torch.device) -> torch.Tensor:
    """(256,) int64: the two fp32 NF4 values a packed byte holds, high nibble first, as one 8-byte word.

    One word per byte makes the lookup a flat ``index_select`` (a row-wise gather of (256, 2) fp32 is
    about 3x slower on the CPU); viewing the result as fp32 gives back the pairs bit for bit.
    """
    nf4 = _tables(device)[0]
    byte = torch.arange(256, device=device)
    return torch.stack([nf4[byte >> 4], nf4[byte & 15]], dim=1).view(torch.int64).flatten()


def _blocks(x: torch.Tensor, blocksize: int) -> torch.Tensor:
    """A flat tensor zero-padded to whole blocks, as (n_blocks, blocksize); a view when no pad is needed."""
    pad = -x.numel() % blocksize
    return (F.pad(x, (0, pad)) if pad else x).view(-1, blocksize)


@dataclass(frozen=True, eq=False)
class NF4Tensor:
    """A weight in NF4 with double-quantized block scales; bitsandbytes' names in brackets.

    codes: uint8 (ceil(n / 2),), two 4-bit codes per byte, high nibble first [the packed weight];
    absmax_codes: uint8 (n_blocks,), absmax - offset in the dynamic 8-bit map [QuantState.absmax];
    absmax_scale: fp32 (ceil(n_blocks / 256),), one scale per 256 absmax values [state2.absmax];
    offset: fp32 scalar, the mean of absmax [offset]; shape and dtype of the quantized weight.
    """

    codes: torch.Tensor
    absmax_codes: torch.Tensor
    absmax_scale: torch.Tensor
    offset: torch.Tensor
    shape: torch.Size
    dtype: torch.dtype
    blocksize: int = 64

    def numel(self) -> int:
        return math.prod(self.shape)

    def nbytes(self) -> int:
        """Bytes of storage (the shared code tables excluded, as in bitsandbytes' accounting)."""
        return sum(t.numel() * t.element_size() for t in self.tensors())

    def bits_per_param(self) -> float:
        return 8 * self.nbytes() / self.numel()

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return self.codes, self.absmax_codes, self.absmax_scale, self.offset

    def dequantize(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        return dequantize_nf4(self, dtype)


def quantize_nf4(w: torch.Tensor, blocksize: int = 64) -> NF4Tensor:
    """Quantize a floating-point tensor to NF4 with double-quantized absmax (see the module docstring)."""
    if not w.is_floating_point() or w.numel() == 0:
        got = f"{w.dtype} tensor of shape {list(w.shape)}"
        raise TypeError(f"quantize_nf4 needs a non-empty floating-point tensor, got a {got}")
    if blocksize not in BLOCKSIZES:
        choices = ", ".join(map(str, BLOCKSIZES))
        raise ValueError(f"unsupported NF4 blocksize {blocksize}; choose one of {choices}")
    n = w.numel()
    blocks = _blocks(w.detach().flatten().float(), blocksize)
    absmax = blocks.abs().amax(dim=1)
    if not torch.isfinite(absmax).all():
        raise ValueError(f"cannot quantize a tensor of shape {tuple(w.shape)} holding inf or NaN")
    scaled = blocks * torch.where(absmax > 0, 1.0 / absmax, 0.0)[:, None]  # an all-zero block -> code 7
    if n % blocksize:  # bitsandbytes divides (not multiplies by the reciprocal) in a partial last block
        scaled[-1] = torch.where(absmax[-1] > 0, blocks[-1] / absmax[-1], 0.0)
    codes = torch.bucketize(scaled, _tables(w.device)[1], out_int32=True)
    pairs = codes.flatten()[: n + n % 2].view(-1, 2)  # an odd count ends on a padding zero: code 7
    packed = (pairs[:, 0] << 4 | pairs[:, 1]).to(torch.uint8)
    offset = absmax.mean()
    absmax_codes, absmax_scale = quantize_dynamic(absmax - offset)
    return NF4Tensor(packed, absmax_codes, absmax_scale, offset, w.shape, w.dtype, blocksize)


def dequantize_nf4(q: NF4Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """The dense weight (``q.dtype`` unless ``dtype`` is given), computed in fp32 like bitsandbytes."""
    absmax = dequantize_dynamic(q.absmax_codes, q.absmax_scale) + q.offset
    values = _pair_table(q.codes.device).index_select(0, q.codes.int()).view(torch.float32)
    w = _blocks(values, q.blocksize).mul_(absmax[:, None]).flatten()[: q.numel()]
    return w.view(q.shape).to(dtype or q.dtype)


def quantize_dynamic(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """bitsandbytes' ``quantize_blockwise`` with the dynamic map and blocks of 256, for a flat fp32 tensor.

    Returns one uint8 code per element and the fp32 absmax of each block.
    """
    blocks = _blocks(x, NESTED_BLOCKSIZE)
    scale = blocks.abs().amax(dim=1)
    scaled = blocks * torch.where(scale > 0, 1.0 / scale, 0.0)[:, None]
    grid = torch.floor((scaled + 1.0) * GRID_HALF + 0.5).long().clamp_(0, 65535)
    codes = torch.where(scale[:, None] > 0, _tables(x.device)[3][grid], 0)  # scale 0: code 0, as in bnb
    return codes.flatten()[: x.numel()], scale


def dequantize_dynamic(codes: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The inverse of ``quantize_dynamic``: map[code] * scale of its block, in fp32."""
    values = _tables(codes.device)[2][codes.long()]
    return (_blocks(values, NESTED_BLOCKSIZE) * scale[:, None]).flatten()[: codes.numel()]


class NF4Linear(nn.Module):
    """A frozen linear layer whose weight is stored as an NF4Tensor and dequantized in every forward.

    The weight is dequantized to the compute dtype: the autocast dtype when autocast is on (bf16 on CUDA),
    else the input's dtype (fp32 on CPU). Backward dequantizes again instead of keeping the dense weight
    alive between forward and backward (as bitsandbytes' ``matmul_4bit``). The bias stays dense and frozen.
    Nothing dequantized is cached, not even absmax' (fp32 per block): it would cost 32 / blocksize bits
    per weight, more than double quantization saves, to skip the smallest part of the work.
    """

    def __init__(self, q: NF4Tensor, bias: torch.Tensor | None):
        super().__init__()
        self.out_features, self.in_features = q.shape
        self.weight_dtype, self.blocksize = q.dtype, q.blocksize
        for name, t in zip(("codes", "absmax_codes", "absmax_scale", "offset"), q.tensors(), strict=True):
            self.register_buffer(name, t)
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone(), requires_grad=False)

    @classmethod
    def from_linear(cls, linear: nn.Linear, blocksize: int = 64) -> NF4Linear:
        return cls(quantize_nf4(linear.weight, blocksize), linear.bias)

    @property
    def storage(self) -> NF4Tensor:
        shape = torch.Size((self.out_features, self.in_features))
        tensors = self.codes, self.absmax_codes, self.absmax_scale, self.offset
        return NF4Tensor(*tensors, shape, self.weight_dtype, self.blocksize)

    def dequantize(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        return dequantize_nf4(self.storage, dtype)

    def nbytes(self) -> int:
        return self.storage.nbytes()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        device = x.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else x.dtype
        return _DequantLinear.apply(x, None if self.bias is None else self.bias.to(dtype), self, dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, blocksize={self.blocksize}"


class _DequantLinear(torch.autograd.Function):
    """x W^T + b with W dequantized in forward and again in backward: no dense W is saved for backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, bias: torch.Tensor | None, layer: NF4Linear, dtype: torch.dtype):
        ctx.layer, ctx.dtype = layer, dtype
        return F.linear(x, layer.dequantize(dtype), bias)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        needs_x, needs_bias = ctx.needs_input_grad[:2]
        grad_x = grad.to(ctx.dtype) @ ctx.layer.dequantize(ctx.dtype) if needs_x else None
        grad_bias = grad.flatten(0, -2).sum(0) if needs_bias else None
        return grad_x, grad_bias, None, None
