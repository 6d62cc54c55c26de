"""Our NF4 (``variants.nf4``) against bitsandbytes' on one device: the stored bytes and the dequantized
weights of a few weight shapes, and a QLoRA layer's forward on each backend (``variant.backend``).

    python -m bench.benchmarks.nf4_check --device cuda --json nf4.json

tests/unit/variants/test_nf4.py checks the bytes on the CPU; bitsandbytes quantizes with another kernel
on CUDA, which this compares. Both quantize the flattened weight in blocks of 64 with double
quantization. ``passed``: every shape bit-identical (codes, absmax codes and scales, offset, the
dequantized weight) and each layer's two forwards within ``FORWARD_TOLERANCE`` of their scale. Without
bitsandbytes or the device, nothing is compared and ``skipped`` says why.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.run.loop import autocast
from variants.nf4 import quantize_nf4

SHAPES = ((768, 768), (3072, 768), (768, 3072), (1000, 37))  # the last: a partial block, an odd count
FORWARD_TOLERANCE = 0.01  # the largest output difference over the largest output (bf16 matmuls)
SEED = 0


def unavailable(device: str) -> str:
    """Why the comparison cannot run on ``device`` ("" when it can)."""
    try:
        import bitsandbytes  # noqa: F401
    except Exception as e:  # ImportError, or a library that fails to load
        return f"bitsandbytes is not importable ({type(e).__name__}: {e}); carry its wheel (docs/speed.md)"
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        return "no CUDA device (torch.cuda.is_available() is False)"
    return ""


def compare_weight(w: torch.Tensor) -> dict[str, Any]:
    """Our NF4 of ``w`` against bitsandbytes' ``quantize_4bit`` of it, on ``w``'s device."""
    from bitsandbytes import functional as bnbf

    packed, state = bnbf.quantize_4bit(w.flatten(), blocksize=64, quant_type="nf4", compress_statistics=True)
    q = quantize_nf4(w)
    theirs = bnbf.dequantize_4bit(packed, state).flatten()
    ours = q.dequantize().flatten()
    return {
        "shape": list(w.shape),
        "codes_same": (q.codes == packed.flatten()).float().mean().item(),
        "absmax_codes_equal": torch.equal(q.absmax_codes, state.absmax),
        "absmax_scale_equal": torch.equal(q.absmax_scale, state.state2.absmax),
        "offset_equal": torch.equal(q.offset, state.offset),
        "dequantized_max_diff": (ours - theirs).abs().max().item(),
    }


def compare_layer(linear: nn.Linear, device: torch.device) -> dict[str, Any]:
    """QLoRA's layer on ``linear`` with each backend, the same LoRA weights: dequantized weights and the
    forward (under the training autocast) of one batch."""
    from variants.qlora import QLoRALinear

    lora = {"r": 8, "alpha": 16.0, "dropout": 0.0, "use_rslora": False, "init": "kaiming"}
    layers = {backend: QLoRALinear(linear, backend, **lora).to(device) for backend in ("ours", "bnb")}
    g = torch.Generator().manual_seed(SEED)
    a, b = (
        torch.randn(layers["ours"].lora_A.shape, generator=g),
        torch.randn(layers["ours"].lora_B.shape, generator=g),
    )
    with torch.no_grad():
        for layer in layers.values():  # B = 0 at init would hide the adapter's path
            layer.lora_A.copy_(a)
            layer.lora_B.copy_(b)
    x = torch.randn(4, 16, linear.in_features, generator=torch.Generator().manual_seed(SEED)).to(device)
    with torch.no_grad(), autocast(device):
        out = {backend: layer(x).float() for backend, layer in layers.items()}
    diff = (out["ours"] - out["bnb"]).abs().max().item()
    scale = out["ours"].abs().max().item() or 1.0
    weights = [layer.quantized.dequantize(torch.float32) for layer in layers.values()]
    return {
        "shape": [linear.out_features, linear.in_features],
        "weights_equal": torch.equal(*weights),
        "forward_max_diff": diff,
        "forward_relative": diff / scale,
    }


def check(device: str) -> dict[str, Any]:
    """Every shape and one layer on ``device``; ``skipped`` when bitsandbytes or the device is missing."""
    why = unavailable(device)
    if why:
        return {"passed": None, "skipped": why}
    dev = torch.device(device)
    g = torch.Generator().manual_seed(SEED)
    weights = []
    for shape in SHAPES:
        for dtype in (torch.float32, torch.bfloat16):
            row = compare_weight(torch.randn(*shape, generator=g).to(dev, dtype))
            weights.append(row | {"dtype": str(dtype).removeprefix("torch.")})
    torch.manual_seed(SEED)
    layer = compare_layer(nn.Linear(768, 768).to(dev), dev)
    identical = all(
        w["codes_same"] == 1.0
        and w["absmax_codes_equal"]
        and w["absmax_scale_equal"]
        and w["offset_equal"]
        and w["dequantized_max_diff"] == 0.0
        for w in weights
    )
    passed = identical and layer["weights_equal"] and layer["forward_relative"] <= FORWARD_TOLERANCE
    return {"passed": passed, "bit_identical": identical, "weights": weights, "layer": layer}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nf4_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="the device both quantize on (default: cuda)")
    parser.add_argument("--json", required=True, help="write the comparison to this file")
    args = parser.parse_args(argv)
    result = check(args.device)
    Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k in ("passed", "skipped", "bit_identical")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
