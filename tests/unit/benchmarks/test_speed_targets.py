"""bench.benchmarks.speed_targets: the ratios of measured step times against the project's targets, and
their verdicts, on fixed times (no timing)."""

from __future__ import annotations

import pytest

from bench.benchmarks import speed_targets
from bench.benchmarks.speed_targets import Ratio


def rows_of(ms: dict[str, tuple[float, float | str]]) -> list[dict]:
    return [
        {"variant": v, "ours_ms": ours, "peft_ms": peft, "peft_note": ""} for v, (ours, peft) in ms.items()
    ]


def test_verdicts_on_fixed_times():
    rows = rows_of({"lora": (8.0, 10.0), "dora": (8.3, 9.0), "full": (10.0, ""), "adalora": (9.0, 12.0)})
    rows.append({"variant": "qlora", "ours_ms": 8.8, "peft_ms": "", "peft_note": "needs CUDA"})
    cpu = {r.name: r for r in speed_targets.ratios(rows, ["lora", "dora", "vera", "adalora", "qlora"], "cpu")}
    assert cpu["lora ours/peft"] == Ratio("lora ours/peft", 0.8, 0.8)  # at the target: met
    assert cpu["lora ours/peft"].verdict == "met"
    assert (cpu["dora ours/peft"].verdict, cpu["adalora ours/peft"].verdict) == ("missed", "met")
    assert cpu["dora/lora"].value == pytest.approx(8.3 / 8) and cpu["dora/lora"].verdict == "missed"
    assert cpu["qlora/lora"].value == pytest.approx(1.1) and cpu["qlora/lora"].verdict == "met"
    assert cpu["vera ours/peft"] == Ratio("vera ours/peft", None, 0.8, "not run")
    assert cpu["qlora ours/peft"] == Ratio("qlora ours/peft", None, 0.8, "needs CUDA")
    assert cpu["vera/lora"].verdict == "not measured" and cpu["vera/lora"].note == "vera not run"
    assert cpu["adalora/lora"] == Ratio("adalora/lora", 9 / 8, None, "none set on cpu")
    assert cpu["lora/full"].verdict == "no target"
    cuda = {r.name: r for r in speed_targets.ratios(rows, ["lora", "dora"], "cuda")}
    assert (cuda["lora ours/peft"].target, cuda["lora ours/peft"].verdict) == (0.5, "missed")
    assert cuda["dora ours/peft"].verdict == "no target"  # the issue sets LoRA's only on CUDA
    assert (cuda["dora/lora"].verdict, cuda["adalora/lora"].verdict, cuda["lora/full"].verdict) == (
        "met", "met", "missed",
    )  # fmt: skip
    assert {r.verdict for r in speed_targets.ratios(rows, ["lora"], "mps")} == {"no target", "not measured"}


def test_a_long_ratio_name_widens_the_summary_s_column(capsys):
    found = [Ratio("lora ours/peft", 0.5, 0.8), Ratio("prompt_tuning ours/peft", 0.75, 0.8)]
    speed_targets.print_summary(found, "cpu", "minilm")
    header, lora, prompt = [
        line for line in capsys.readouterr().out.splitlines() if line.startswith(("ratio ", "lora", "prompt"))
    ]
    ends = {header.index("measured") + 8, lora.index("0.500") + 5, prompt.index("0.750") + 5}
    assert len(ends) == 1 and prompt.startswith("prompt_tuning ours/peft ")
