"""bench.benchmarks.peer_compare on the tiny model and 32 sentences: both sides train and report, alternate,
count the
same samples and trainable parameters; the summary's ratio and noise bar; bad arguments fail clearly.
No timed assertions."""

from __future__ import annotations

import json
import math

import pytest
import torch
from helpers.runs import lora_params

from bench.benchmarks import peer_compare

TINY = ["--model", "tiny", "--train-samples", "32", "--batch", "16", "--device", "cpu"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.slow
def test_both_sides_train_alternate_and_report(tmp_path, capsys):
    out = tmp_path / "peer.json"
    assert peer_compare.main([*TINY, "--repeats", "2", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    rows, summary, settings = report["rows"], report["summary"], report["settings"]
    assert [(r["implementation"], r["repeat"]) for r in rows] == [
        ("ours", 1), ("peer", 1), ("peer", 2), ("ours", 2),
    ]  # fmt: skip
    assert (settings["train_examples"], settings["test_examples"], settings["max_length"]) == (32, 1000, 64)
    assert (settings["lr"], settings["lora"], settings["target_modules"]) == (
        8e-3, {"r": 8, "alpha": 8.0, "dropout": 0.0}, ["query", "value"],
    )  # fmt: skip
    for r in rows:
        assert set(r) == {"implementation", "repeat", "samples_per_s", "train_time_s", "trainable_params",
                          "score", "metrics"}  # fmt: skip
        assert math.isfinite(r["samples_per_s"]) and r["samples_per_s"] > 0
        assert r["train_time_s"] > 0
        # both count one epoch of the 32 examples, up to the rounding of each side's figures (time to
        # 3 decimals, samples/s to 2: an error that grows as the tiny model trains faster)
        rounding = 5e-4 * r["samples_per_s"] + 5e-3 * r["train_time_s"]
        assert abs(r["samples_per_s"] * r["train_time_s"] - 32) <= rounding
        assert r["trainable_params"] == lora_params(8)  # LoRA on query and value, plus the head
        assert 0 <= r["score"] <= 1 and r["score"] == r["metrics"]["test/accuracy"]
        assert set(r["metrics"]) == {"test/accuracy", "test/f1"}
    for side in ("ours", "peer"):  # the same seed every repeat: on CPU the same model
        first, second = (r["score"] for r in rows if r["implementation"] == side)
        assert first == second and summary[side]["score"] == first
    speeds = {
        s: sorted(r["samples_per_s"] for r in rows if r["implementation"] == s) for s in ("ours", "peer")
    }
    assert summary["ratio"] == pytest.approx(sum(speeds["ours"]) / sum(speeds["peer"]))  # medians of two
    assert summary["difference"] == pytest.approx(summary["ours"]["score"] - summary["peer"]["score"])
    assert summary["agree"] == (abs(summary["difference"]) <= summary["noise"])
    printed = capsys.readouterr().out
    assert "implementation" in printed and "test/accuracy" in printed
    assert f"samples/s ours / peer: {summary['ratio']:.2f} (median of each side)" in printed
    assert "rt_polarity with tiny on cpu" in printed and "on query, value" in printed


def test_summary_medians_ratio_and_noise_bar():
    def row(side: str, speed: float, score: float) -> dict:
        return {"implementation": side, "samples_per_s": speed, "train_time_s": 100 / speed, "score": score}

    rows = [
        row("ours", 80.0, 0.80),
        row("peer", 40.0, 0.78),
        row("peer", 30.0, 0.78),
        row("ours", 60.0, 0.80),
    ]
    summary = peer_compare.summarize(rows, test_size=1000, accuracy=True)
    assert summary["ours"]["samples_per_s"] == 70.0 and summary["peer"]["samples_per_s"] == 35.0
    assert summary["ratio"] == pytest.approx(2.0)
    assert summary["difference"] == pytest.approx(0.02)
    assert summary["noise"] == pytest.approx(2 * math.sqrt((0.8 * 0.2 + 0.78 * 0.22) / 1000))  # 0.0363
    assert summary["agree"] is True
    apart = peer_compare.summarize([row("ours", 1.0, 0.9), row("peer", 1.0, 0.8)], 1000, accuracy=True)
    assert apart["agree"] is False  # 0.1 apart, the bar is 0.033
    other = peer_compare.summarize(rows, 1000, accuracy=False)
    assert other["noise"] is None and other["agree"] is None


@pytest.mark.parametrize(
    "args, message",
    [
        (["--task", "nope"], "unknown --task 'nope'; choose one of amazon_polarity, cola,"),
        (["--model", "gpt"], "unknown --model 'gpt'; choose one of bert_base, deberta_v3_base, minilm,"),
        (["--train-samples", "0"], "--train-samples=0 is not valid: it must be >= 1"),
        (["--epochs", "0"], "--epochs=0 is not valid: it must be >= 1"),
        (["--batch", "-1"], "--batch=-1 is not valid: it must be >= 1"),
        (["--repeats", "0"], "--repeats=0 is not valid: it must be >= 1"),
        (["--device", "tpu"], "unknown --device 'tpu'; choose one of auto, cpu, cuda, mps"),
        (["--batch", "x"], "argument --batch: invalid int value: 'x'"),
    ],
)
def test_bad_arguments_name_the_value_and_the_choices(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        peer_compare.parse_args(args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_refused(capsys):
    with pytest.raises(SystemExit):
        peer_compare.parse_args(["--device", "cuda"])
    assert "--device: device 'cuda' asks for CUDA, but this machine has none" in capsys.readouterr().err
