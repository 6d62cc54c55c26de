"""bench.speed on the tiny shape: the CSV's rows and columns, ratios computed from the measured columns,
the peft twins set up like ours, and the errors. No timed assertions (speed targets live in bench/)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
from tqdm.auto import tqdm

import variants
from bench import speed
from bench.models import model_config, resolve_targets

FAST = ["--shape", "tiny", "--batch", "2", "--seq", "8", "--steps", "2", "--warmup", "1", "--device", "cpu"]
CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("one_thread")


def run_main(tmp_path: Path, *args: str) -> list[dict[str, str]]:
    out = tmp_path / "speed.csv"
    assert speed.main([*FAST, *args, "--out", str(out)]) == 0
    with out.open(newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == speed.COLUMNS
        return list(reader)


def positive(value: str) -> float:
    x = float(value)
    assert math.isfinite(x) and x > 0, value
    return x


def assert_ratio(ratio: str, num: str, den: str) -> None:
    """ratio == num / den up to the CSV's rounding (ms to 3 decimals, ratios to 4)."""
    a, b, r = positive(num), positive(den), positive(ratio)
    bound = (a / b) * (5e-4 / a + 5e-4 / b) * 1.01 + 5e-5
    assert abs(r - a / b) <= bound, (ratio, num, den)


def test_rows_and_ratios_with_peft(tmp_path):
    rows = run_main(tmp_path, "--variants", "lora,full,head")
    assert [r["variant"] for r in rows] == ["lora", "full", "head"]
    by = {r["variant"]: r for r in rows}
    full = by["full"]["ours_ms"]
    assert_ratio(by["lora"]["ours_vs_peft"], by["lora"]["ours_ms"], by["lora"]["peft_ms"])
    assert by["lora"]["peft_note"] == ""
    for fraction, row in zip((2 / 3, 1.0, 1 / 3), rows, strict=True):
        assert_ratio(row["ours_vs_full"], row["ours_ms"], full)
        assert_ratio(row["vs_floor"], row["ours_ms"], row["floor_ms"])
        assert float(row["floor_ms"]) == pytest.approx(fraction * float(full), abs=1e-3)
        assert (row["shape"], row["targets"], row["batch"], row["seq"]) == ("tiny", "attention", "2", "8")
        assert (row["steps"], row["warmup"], row["device"]) == ("2", "1", speed.describe(CPU))
    assert float(by["full"]["ours_vs_full"]) == 1.0
    for name in ("full", "head"):  # anchors: peft has no such method
        assert (by[name]["peft_ms"], by[name]["ours_vs_peft"]) == ("", "")
        assert by[name]["peft_note"] == speed.NO_PEFT_METHOD


def test_no_peft_and_the_anchor_is_always_timed(tmp_path, capsys):
    rows = run_main(tmp_path, "--variants", "lora,head", "--no-peft")
    assert [r["variant"] for r in rows] == ["lora", "head", "full"]
    assert all(r["peft_ms"] == "" and r["peft_note"] == "--no-peft" for r in rows)
    for row in rows:
        assert_ratio(row["ours_vs_full"], row["ours_ms"], rows[2]["ours_ms"])
    table = capsys.readouterr().out
    assert "ours/peft" in table and "vs floor" in table and "peft lora: skipped, --no-peft" in table


@pytest.mark.parametrize("name", ["lora", "dora", "vera", "adalora", "loraplus"])
def test_peft_twin_trains_the_same_parameters(name):
    """peft's run has our trainable sizes and optimizer groups (lr, weight decay), and it steps."""
    shape = model_config("tiny")
    base = speed.base_model(shape, 8, speed.SEED)
    targets = resolve_targets(shape, "attention")
    variant, ours = speed.our_run(name, speed.variant_options(name, 3, shape), base, targets, CPU)
    theirs = speed.peft_run(variant, ours.model, base, CPU)

    def groups(run):
        return sorted(
            (g["lr"], g["weight_decay"], sum(p.numel() for p in g["params"]))
            for g in run.optimizer.param_groups
            if g["params"]
        )

    assert sum(p.numel() for p in theirs.trainable) == sum(p.numel() for p in ours.trainable) > 0
    assert groups(theirs) == groups(ours)
    before = [p.detach().clone() for p in theirs.trainable]
    batch = speed.make_batch(shape, 2, 8, speed.SEED, CPU)
    medians = speed.time_runs([ours, theirs], batch, 1, 2, CPU, tqdm(disable=True))
    assert all(math.isfinite(m) and m > 0 for m in medians)
    assert any(not torch.equal(a, p) for a, p in zip(before, theirs.trainable, strict=True))


def test_peft_qlora_is_skipped_with_a_reason_off_cuda():
    assert "needs CUDA and bitsandbytes" in variants.get("qlora")().peft_unavailable(CPU)
    assert variants.get("lora")().peft_unavailable(CPU) is None
    assert variants.get("head")().peft_unavailable(CPU) == speed.NO_PEFT_METHOD


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--variants", "lora,lorra"], "unknown variant(s) ['lorra']; available: adalora,"),
        (["--shape", "huge"], "invalid choice: 'huge'"),
        (["--steps", "0"], "--steps must be >= 1, got 0"),
        (["--targets", "mlp"], "unknown --targets 'mlp' for roberta_base; choose one of attention,"),
    ],
)
def test_bad_arguments_name_the_value_and_the_choices(args, message, capsys):
    with pytest.raises(SystemExit):
        speed.main(args)
    assert message in capsys.readouterr().err
