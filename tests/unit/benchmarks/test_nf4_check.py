"""Our NF4 against bitsandbytes' on one device (bench.benchmarks.nf4_check): here on the CPU, where
bitsandbytes has a kernel too; on CUDA it runs in the GPU check."""

import json
import sys

import pytest
import torch

from bench.benchmarks import nf4_check


def test_without_bitsandbytes_the_check_is_skipped_and_says_why(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # import bitsandbytes raises ImportError
    assert nf4_check.check("cpu") == {"passed": None, "skipped": nf4_check.unavailable("cpu")}
    assert nf4_check.unavailable("cpu").startswith("bitsandbytes is not importable (ModuleNotFoundError")
    out = tmp_path / "nf4.json"
    assert nf4_check.main(["--device", "cpu", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["skipped"].endswith("carry its wheel (docs/speed.md)")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the answer of a machine without CUDA")
def test_without_cuda_the_cuda_check_is_skipped():
    pytest.importorskip("bitsandbytes")
    assert nf4_check.check("cuda") == {
        "passed": None, "skipped": "no CUDA device (torch.cuda.is_available() is False)"
    }  # fmt: skip


def test_on_the_cpu_our_bytes_and_the_layer_equal_bitsandbytes():
    pytest.importorskip("bitsandbytes")
    found = nf4_check.check("cpu")
    assert found["passed"] is True and found["bit_identical"] is True
    assert len(found["weights"]) == 2 * len(nf4_check.SHAPES)
    assert {w["dtype"] for w in found["weights"]} == {"float32", "bfloat16"}
    assert all(w["codes_same"] == 1.0 and w["dequantized_max_diff"] == 0.0 for w in found["weights"])
    assert found["layer"] == {
        "shape": [768, 768], "weights_equal": True, "forward_max_diff": 0.0, "forward_relative": 0.0
    }  # fmt: skip


def test_a_different_byte_is_found():
    pytest.importorskip("bitsandbytes")
    w = torch.randn(64, 64)
    row = nf4_check.compare_weight(w)
    assert row["codes_same"] == 1.0 and row["dequantized_max_diff"] == 0.0
    from bitsandbytes import functional as bnbf

    real = bnbf.quantize_4bit
    try:  # bitsandbytes quantizing the weight shifted by one: some codes differ
        bnbf.quantize_4bit = lambda x, **kw: real(x.roll(1), **kw)
        row = nf4_check.compare_weight(w)
    finally:
        bnbf.quantize_4bit = real
    assert row["codes_same"] < 1.0 and row["dequantized_max_diff"] > 0.0
