"""bench.benchmarks.speed on the tiny shape: the CSV's and JSON's rows and columns, ratios computed from the
measured columns, the target verdicts and the inference rows in its JSON, the peft twins set up like ours,
--compile, and the errors. No timed assertions (the speed targets live in bench.benchmarks.speed_targets)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch
from helpers.ln_tuning import LNTuning
from helpers.speed import MERGE_ATOL
from tqdm.auto import tqdm

import variants
from bench.benchmarks import inference_speed, speed, speed_targets
from bench.inputs.models import model_config, resolve_targets
from variants.peft_twin import twin

FAST = ["--shape", "tiny", "--batch", "2", "--seq", "8", "--steps", "2", "--warmup", "1", "--device", "cpu"]
CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("one_thread")


def read_csv(path: Path, columns: list[str]) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == columns
        return list(reader)


def run_main(tmp_path: Path, *args: str) -> list[dict[str, str]]:
    out = tmp_path / "speed.csv"
    assert speed.main([*FAST, *args, "--out", str(out)]) == 0
    return read_csv(out, speed.COLUMNS)


def positive(value: str) -> float:
    x = float(value)
    assert math.isfinite(x) and x > 0, value
    return x


def assert_ratio(ratio: str | float, num: str | float, den: str | float) -> None:
    """ratio == num / den up to the output's rounding (ms to 3 decimals, ratios to 4)."""
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
        assert (row["steps"], row["warmup"], row["device"]) == ("2", "1", speed.device_name(CPU))
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
    timings = speed.time_runs([ours, theirs], batch, 1, 2, CPU, tqdm(disable=True))
    assert all(math.isfinite(t.median_ms) and t.median_ms > 0 and t.first_ms > 0 for t in timings)
    assert any(not torch.equal(a, p) for a, p in zip(before, theirs.trainable, strict=True))


def test_each_variant_is_timed_on_its_own_targets(tmp_path, monkeypatch, capsys):
    """A LayerNorm method (peft's LN_TUNING) beside LoRA: each on its own targets, both against peft's."""
    monkeypatch.setitem(variants.registry._REGISTRY, "ln_tuning", LNTuning)
    rows = run_main(tmp_path, "--variants", "ln_tuning,lora", "--json", str(tmp_path / "speed.json"))
    assert [(r["variant"], r["targets"]) for r in rows] == [
        ("ln_tuning", "LayerNorm"),
        ("lora", "attention"),
        ("full", "attention"),
    ]
    by = {r["variant"]: r for r in rows}
    assert_ratio(by["ln_tuning"]["ours_vs_peft"], by["ln_tuning"]["ours_ms"], by["ln_tuning"]["peft_ms"])
    inference = {r["variant"]: r for r in json.loads((tmp_path / "speed.json").read_text())["inference"]}
    assert inference["ln_tuning"]["targets"] == "LayerNorm"
    assert inference["ln_tuning"]["merged_max_diff"] <= MERGE_ATOL
    assert "each variant's own targets" in capsys.readouterr().out


def test_targets_given_as_a_list_apply_to_every_variant(tmp_path):
    rows = run_main(tmp_path, "--variants", "lora", "--targets", "key,value", "--no-inference")
    assert [(r["variant"], r["targets"]) for r in rows] == [("lora", "key,value"), ("full", "key,value")]
    positive(rows[0]["peft_ms"])


def test_peft_qlora_is_skipped_with_a_reason_off_cuda():
    assert "needs CUDA and bitsandbytes" in twin(variants.get("qlora")()).unavailable(CPU)
    assert twin(variants.get("lora")()).unavailable(CPU) is None
    assert twin(variants.get("head")()).unavailable(CPU) == speed.NO_PEFT_METHOD


def test_json_holds_the_rows_the_inference_and_the_target_ratios(tmp_path, capsys):
    doc_path = tmp_path / "speed.json"
    rows = run_main(tmp_path, "--variants", "lora,dora,head", "--json", str(doc_path))
    doc = json.loads(doc_path.read_text())
    assert [r["variant"] for r in doc["rows"]] == ["lora", "dora", "head", "full"]
    for row, csv_row in zip(doc["rows"], rows, strict=True):
        assert {k: str(v) for k, v in row.items()} == csv_row
    assert all(row["compiled"] == "none" and row["first_step_s"] > 0 for row in doc["rows"])
    inference = read_csv(
        tmp_path / "speed_inference.csv", [*inference_speed.INFERENCE_COLUMNS, *speed.RUN_COLUMNS]
    )
    assert (
        [r["variant"] for r in inference]
        == [r["variant"] for r in doc["inference"]]
        == ["lora", "dora", "head", "full"]
    )
    for row in doc["inference"]:
        assert row["base_ms"] > 0 and row["unmerged_ms"] > 0
        assert_ratio(row["unmerged_vs_base"], row["unmerged_ms"], row["base_ms"])
        if row["variant"] in ("lora", "dora"):
            assert row["merged_ms"] > 0 and row["merge_note"] == ""
            assert_ratio(row["merged_vs_base"], row["merged_ms"], row["base_ms"])
            assert row["merged_max_diff"] <= MERGE_ATOL
        else:
            assert (row["merged_ms"], row["merged_vs_base"]) == ("", "")
            assert row["merge_note"] == inference_speed.NO_MERGE
    by = {r["ratio"]: r for r in doc["ratios"]}
    ms = {r["variant"]: r for r in doc["rows"]}
    assert_ratio(by["lora ours/peft"]["value"], ms["lora"]["ours_ms"], ms["lora"]["peft_ms"])
    assert_ratio(by["dora/lora"]["value"], ms["dora"]["ours_ms"], ms["lora"]["ours_ms"])
    assert by["dora/lora"]["target"] == speed_targets.TARGETS["dora/lora"]["cpu"]
    vera = {"value": None, "target": speed_targets.TARGETS["ours/peft"]["cpu"], "note": "not run"}
    assert by["vera ours/peft"] == {"ratio": "vera ours/peft", "verdict": "not measured", **vera}
    assert by["vera/lora"]["note"] == "vera not run"
    assert by["lora/full"]["verdict"] == "no target" and by["lora/full"]["note"] == "none set on cpu"
    out = capsys.readouterr().out
    assert "floor ms" in out and "merged ms" in out and "compiled: none" in out
    for r in doc["ratios"]:
        assert f"  {r['verdict']}" in next(
            line for line in out.splitlines() if line.startswith(r["ratio"] + " ")
        )


@pytest.mark.slow  # inductor compiles lora's and full's step: minutes on a loaded 2-core CPU
def test_compile_on_times_a_compiled_step(tmp_path, capsys):
    """seq 6 is padded to 8 (PAD_MULTIPLE); the first step holds the compile."""
    out = tmp_path / "speed.csv"
    args = [*FAST, "--seq", "6", "--variants", "lora", "--no-peft", "--no-inference", "--compile", "on"]
    assert speed.main([*args, "--out", str(out)]) == 0
    rows = read_csv(out, speed.COLUMNS)
    assert [r["compiled"] for r in rows] == ["ours", "ours"]
    assert all(1e3 * positive(r["first_step_s"]) > positive(r["ours_ms"]) for r in rows)
    text = capsys.readouterr().out
    assert "seq 6 (padded to 8)" in text and "compiled: ours (torch.compile" in text
    batch = speed.make_batch(model_config("tiny"), 2, 6, speed.SEED, CPU, speed.padded_length(6, True))
    assert batch["input_ids"].shape == (2, 8) and batch["attention_mask"].sum(1).tolist() == [6, 6]


def test_the_default_variants_are_every_registered_one():
    assert speed.parse_args([]).variants == variants.available()
    assert speed.parse_args(["--variants", "lora, bitfit"]).variants == ["lora", "bitfit", "full"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--variants", "lora,lorra"], "unknown variant(s) ['lorra']; available: adalora,"),
        (["--shape", "huge"], "invalid choice: 'huge'"),
        (["--steps", "0"], "--steps must be >= 1, got 0"),
        (["--targets", "mlp"], "unknown --targets 'mlp' for roberta_base; choose one of attention,"),
        (["--targets", "query,gate_proj"], "module-name suffixes of its modules (none ends with gate_proj)"),
        (["--compile", "yes"], "argument --compile: invalid choice: 'yes'"),
    ],
)
def test_bad_arguments_name_the_value_and_the_choices(args, message, capsys):
    with pytest.raises(SystemExit):
        speed.main(args)
    assert message in capsys.readouterr().err


def test_compile_without_warmup_is_refused():
    with pytest.raises(SystemExit, match=r"--compile on compiles on cpu: it needs --warmup >= 1"):
        speed.main([*FAST, "--warmup", "0", "--compile", "on"])
