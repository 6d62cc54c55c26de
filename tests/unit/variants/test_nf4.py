"""Our NF4 + double quantization against bitsandbytes (a test reference only) on the CPU, bit for bit.

bitsandbytes quantizes the flattened tensor, so its reference is taken on ``w.flatten()``: its CPU
``dequantize_4bit`` kernel blocks 2-D tensors per row, which disagrees with its own quantizer when the
last dimension is even and not a multiple of the blocksize (e.g. (64, 96) at blocksize 64). For shapes
it handles, the 2-D dequantization is compared too.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from variants.nf4 import (
    NF4_VALUES,
    NF4Linear,
    dequantize_dynamic,
    dequantize_nf4,
    dynamic_map,
    quantize_dynamic,
    quantize_nf4,
)

# The 16 NF4 code values, verbatim from bitsandbytes 0.50.2, bitsandbytes/functional.py, get_4bit_type("nf4")
# (generated there by create_normal_map(offset=0.9677083); QLoRA, Dettmers et al., 2023, arXiv:2305.14314).
REFERENCE_NF4 = [
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
]  # fmt: skip
SHAPES = [(64, 64), (256, 128), (1000, 37), (3, 5), (64, 96), (300, 448), (7, 33), (20001,)]
DTYPES = [torch.float32, torch.bfloat16, torch.float16]


@pytest.fixture(scope="module")
def bnbf():
    """bitsandbytes.functional, with torch.compile off: bnb compiles its generic dequantization per shape
    (seconds each), and its eager result is the same."""
    bnbf = pytest.importorskip("bitsandbytes.functional")
    disabled = torch._dynamo.config.disable
    torch._dynamo.config.disable = True
    yield bnbf
    torch._dynamo.config.disable = disabled


def bnb_quantize(bnbf, w: torch.Tensor, blocksize: int = 64):
    return bnbf.quantize_4bit(w.flatten(), blocksize=blocksize, quant_type="nf4", compress_statistics=True)


def assert_bit_identical(bnbf, w: torch.Tensor, blocksize: int = 64) -> None:
    packed, state = bnb_quantize(bnbf, w, blocksize)
    q = quantize_nf4(w, blocksize)
    assert torch.equal(q.codes, packed.flatten())
    assert torch.equal(q.absmax_codes, state.absmax)
    assert torch.equal(q.absmax_scale, state.state2.absmax)
    assert torch.equal(q.offset, state.offset)
    assert state.state2.blocksize == 256
    ours = dequantize_nf4(q)
    assert ours.dtype == w.dtype and ours.shape == w.shape
    assert torch.equal(ours.flatten(), bnbf.dequantize_4bit(packed, state).flatten())


def test_code_table_is_the_reference(bnbf):
    assert list(NF4_VALUES) == REFERENCE_NF4
    assert torch.equal(torch.tensor(NF4_VALUES), bnbf.get_4bit_type("nf4", device="cpu"))


def test_dynamic_map_equals_bitsandbytes(bnbf):
    ours = dynamic_map()
    assert ours.dtype == torch.float32 and ours.shape == (256,)
    assert torch.equal(ours, bnbf.create_dynamic_map(signed=True))
    assert ours[0].item() == pytest.approx(-0.99296875) and ours[-1].item() == 1.0 and (ours == 0).sum() == 1


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_bit_identical_to_bitsandbytes(bnbf, shape, dtype, seed):
    torch.manual_seed(seed)
    w = (torch.randn(shape) * (0.02 + seed)).to(dtype)
    assert_bit_identical(bnbf, w)


@pytest.mark.parametrize("shape", [(64, 128), (256, 256), (33, 31)], ids=str)
def test_2d_dequantization_equals_bitsandbytes(bnbf, shape):
    """Where bitsandbytes' CPU kernel blocks 2-D tensors consistently (last dim a multiple of 64, or odd)."""
    torch.manual_seed(0)
    w = torch.randn(shape)
    packed, state = bnbf.quantize_4bit(w, blocksize=64, quant_type="nf4", compress_statistics=True)
    assert torch.equal(dequantize_nf4(quantize_nf4(w)), bnbf.dequantize_4bit(packed, state))


@pytest.mark.parametrize("blocksize", [32, 128, 256])
def test_other_blocksizes(bnbf, blocksize):
    torch.manual_seed(0)
    assert_bit_identical(bnbf, torch.randn(300, 65), blocksize)


def test_ties_and_thresholds(bnbf):
    """Values exactly on the fp32 midpoints of the NF4 table (and one ulp either side), in full blocks
    (bnb multiplies by 1 / absmax) and in a partial last block (bnb divides by absmax)."""
    nf4 = torch.tensor(NF4_VALUES)
    mids = (nf4[1:] + nf4[:-1]) / 2
    near = torch.cat([mids, torch.nextafter(mids, nf4[:-1]), torch.nextafter(mids, nf4[1:])])
    torch.manual_seed(0)
    scales = torch.rand(40) * 3 + 0.01
    rows = [torch.cat([s.view(1), near * s, torch.zeros(63 - near.numel())]) for s in scales]
    w = torch.cat([torch.cat(rows), near[:50] * 0.37, torch.tensor([0.37])])  # ends in a partial block
    assert w.numel() % 64 != 0
    assert_bit_identical(bnbf, w)


def test_dynamic_lookup_equals_bitsandbytes(bnbf):
    """The 8-bit step alone, on values placed at the half-points of its 16-bit grid (the rounding edges)."""
    torch.manual_seed(0)
    grid = torch.randint(0, 65535, (256 * 40 + 100,)).double()
    x = ((grid + 0.5) / 32767.5 - 1.0).float()
    x = (x.view(torch.int32) + torch.randint(-3, 4, x.shape, dtype=torch.int32)).view(torch.float32)
    x = x.clamp(-0.999, 0.999) * 0.3
    x[::256] = 0.3  # every block's absmax is 0.3, so x / absmax lands where it was put
    codes, scale = quantize_dynamic(x)
    ref_codes, ref_state = bnbf.quantize_blockwise(x, code=dynamic_map(), blocksize=256)
    assert torch.equal(codes, ref_codes) and torch.equal(scale, ref_state.absmax)
    assert torch.equal(dequantize_dynamic(codes, scale), bnbf.dequantize_blockwise(ref_codes, ref_state))


def test_zero_blocks(bnbf):
    w = torch.randn(8, 128)
    w[2] = 0  # two all-zero blocks
    assert_bit_identical(bnbf, w)
    assert_bit_identical(bnbf, torch.zeros(4, 256))  # absmax 0 everywhere: scale 0, codes 0
    assert_bit_identical(bnbf, torch.full((4, 64), 0.25))


@pytest.mark.parametrize("shape", [(512, 512), (768, 768), (1000, 37), (3, 5)], ids=str)
def test_storage_bytes(shape):
    q = quantize_nf4(torch.randn(shape))
    n = math.prod(shape)
    blocks = math.ceil(n / 64)
    assert q.nbytes() == math.ceil(n / 2) + blocks + 4 * math.ceil(blocks / 256) + 4
    assert q.codes.dtype == q.absmax_codes.dtype == torch.uint8
    assert q.absmax_scale.dtype == q.offset.dtype == torch.float32


def test_bits_per_param_with_double_quant():
    q = quantize_nf4(torch.randn(512, 512))
    assert q.bits_per_param() == pytest.approx(4 + 8 / 64 + 32 / (64 * 256) + 32 / 512**2)
    assert abs(q.bits_per_param() - 4.127) < 1e-3


def test_round_trip_error_bounded():
    torch.manual_seed(0)
    w = torch.randn(512, 512) * 0.02
    q = quantize_nf4(w)
    blocks = w.view(-1, 64)
    absmax = blocks.abs().amax(dim=1)
    absmax_dq = dequantize_dynamic(q.absmax_codes, q.absmax_scale) + q.offset
    # The 8-bit absmax is within half the widest gap of the dynamic map (0.0140625 / 2) of its scale.
    assert ((absmax_dq - absmax).abs() <= 0.00704 * q.absmax_scale.repeat_interleave(256)).all()
    # Each weight is within half the widest NF4 gap of its block's absmax, plus the absmax error.
    half_gap = torch.tensor(NF4_VALUES).diff().max().item() / 2  # between -1 and -0.696
    err = (dequantize_nf4(q).view(-1, 64) - blocks).abs()
    assert (err <= half_gap * absmax[:, None] + (absmax_dq - absmax).abs()[:, None] + 1e-7).all()
    assert (err.pow(2).mean().sqrt() / w.std()).item() < 0.1


def test_dequantize_to_another_dtype():
    q = quantize_nf4(torch.randn(64, 64))
    assert torch.equal(dequantize_nf4(q, torch.bfloat16), dequantize_nf4(q).to(torch.bfloat16))
    assert q.dequantize(torch.float16).dtype == torch.float16


@pytest.mark.parametrize("shape", [(1000, 37), (7, 33), (256, 128)], ids=str)  # partial, odd, whole blocks
def test_dequantize_is_the_nibble_lookup_times_absmax(shape):
    """The packed-pair lookup equals NF4[code] * absmax' nibble by nibble (fp32, then rounded to the dtype),
    without bitsandbytes."""
    torch.manual_seed(0)
    q = quantize_nf4(torch.randn(shape))
    n = math.prod(shape)
    nibbles = torch.stack([q.codes >> 4, q.codes & 15], dim=1).flatten()[:n].long()
    absmax = dequantize_dynamic(q.absmax_codes, q.absmax_scale) + q.offset
    plain = torch.tensor(NF4_VALUES)[nibbles] * absmax.repeat_interleave(64)[:n]
    for dtype in DTYPES:
        assert torch.equal(dequantize_nf4(q, dtype).flatten(), plain.to(dtype))


def test_bad_inputs_are_refused():
    with pytest.raises(TypeError, match="floating-point"):
        quantize_nf4(torch.ones(64, dtype=torch.int64))
    with pytest.raises(ValueError, match="blocksize 100; choose one of 32, 64"):
        quantize_nf4(torch.randn(64), blocksize=100)
    with pytest.raises(ValueError, match="inf or NaN"):
        quantize_nf4(torch.tensor([1.0, float("nan")]))


def test_nf4_linear_forward():
    torch.manual_seed(0)
    linear = torch.nn.Linear(128, 64)
    layer = NF4Linear.from_linear(linear)
    x = torch.randn(5, 128)
    w = dequantize_nf4(quantize_nf4(linear.weight))
    assert torch.equal(layer(x), F.linear(x, w, linear.bias))
    assert layer.nbytes() == 128 * 64 // 2 + 128 + 4 + 4
    assert not any(p.requires_grad for p in layer.parameters())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
    bf16 = torch.bfloat16
    assert torch.equal(y, F.linear(x.to(bf16), w.to(bf16), linear.bias.detach().to(bf16)))


def test_nf4_linear_backward_keeps_no_dense_weight():
    torch.manual_seed(0)
    linear = torch.nn.Linear(128, 64)
    layer = NF4Linear.from_linear(linear)
    x = torch.randn(2, 5, 128, requires_grad=True)
    ref = x.detach().clone().requires_grad_()
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.shape) or t, lambda t: t):
        y = layer(x)
    assert saved == []  # a dense F.linear would save W (64 x 128) for backward
    grad = torch.randn_like(y)
    y.backward(grad)
    F.linear(ref, layer.dequantize(), linear.bias.detach()).backward(grad)
    torch.testing.assert_close(x.grad, ref.grad, rtol=0, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    torch.manual_seed(0)
    w = torch.randn(768, 768)
    cpu, gpu = quantize_nf4(w), quantize_nf4(w.cuda())
    assert torch.equal(gpu.codes.cpu(), cpu.codes)
    torch.testing.assert_close(gpu.dequantize().cpu(), cpu.dequantize(), rtol=1e-6, atol=1e-7)
