"""bench.analysis.explorer: the data the interactive plots draw, on helpers.report_results' comparison
(3 tasks x 4 variants, known answers): a point per variant and task with its values, CIs and runs, the
tied marked, the dev-selected lr, learning curves of the dev metric, the axes offered, the section's HTML
(the data as JSON, plotly.js by its relative path); the Pareto frontier itself is drawn in the browser
(test_explorer_chromium)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from helpers.report_results import TASKS, write_comparison

from bench.analysis import report, runs_table
from bench.analysis.configurations import configurations, tuned_board
from bench.analysis.explorer import AXES, curve_key, explorer_data, explorer_section
from bench.analysis.selection import sensitivity


@pytest.fixture(scope="module")
def comparison(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("comparison")
    write_comparison(folder)
    return folder


def data_of(folder: Path) -> dict:
    runs = runs_table.load(folder)
    rows = report.selected_rows(tuned_board(runs, full=True))
    return explorer_data(runs, rows, sensitivity(configurations(runs)), folder)


def test_a_point_per_variant_and_task_with_its_values_cis_and_runs(comparison):
    data = data_of(comparison)
    assert data["tasks"] == list(TASKS) and data["variants"] == ["dora", "full", "ia3", "lora"]
    assert [a["key"] for a in data["axes"]] == [
        k for k, *_ in AXES if k not in ("adapter_mb", "inference_ms")
    ]
    assert data["default"] == ["trainable_params", "mean_x100"] and data["chance"]["rt_rating"] == 50.0
    points = {(p["task"], p["variant"]): p for p in data["points"]}
    assert len(points) == 12
    dora = points[("rt_polarity", "dora")]
    assert dora["config"] == "lr=0.001" and dora["seeds"] == [0, 1, 2] and dora["runs"] == 3
    assert dora["values"]["trainable_params"] == 120_000 and dora["values"]["mean_x100"] == pytest.approx(
        84.0
    )
    assert dora["ci"]["mean_x100"] == pytest.approx([84.0 - 1.242, 84.0 + 1.242], abs=1e-3)
    assert dora["ci"]["train_time_s"] == [30.0, 30.0]  # the same time in every run: a zero-width CI
    assert "trainable_params" not in dora["ci"]  # a count, not measured: no CI
    assert (dora["grid"], dora["grid_runs"]) == (3, 9)
    tied = {v for (t, v), p in points.items() if t == "rt_polarity" and p["tied"]}
    assert tied == {"dora", "lora"}  # the leaderboard's marks: full and ia3 apart


def test_the_lr_lines_mark_the_lr_selected_on_dev(comparison):
    lines = {(x["task"], x["variant"]): x for x in data_of(comparison)["sensitivity"]}
    dora = lines[("rt_polarity", "dora")]
    assert dora["lr"] == [3e-4, 1e-3, 3e-3] and dora["dev"] == pytest.approx([82.0, 85.0, 80.0])
    assert (dora["selected"], dora["selected_text"]) == (1e-3, "0.001")  # not 3e-3: its test is higher
    assert {v for t, v in lines if t == "rt_rating"} == {"dora", "full", "ia3", "lora"}


def test_the_curves_are_the_dev_metric_and_need_no_test_metrics(comparison, tmp_path):
    """A run evaluates the test splits once at the end by default: its history.jsonl has dev metrics only,
    and its curves are those of a history with the test metrics beside them."""
    curves = data_of(comparison)["curves"]
    assert len(curves) == 12 and {tuple(c["key"]) for c in curves} == {("dev/accuracy",)}
    write_comparison(tmp_path)
    for path in tmp_path.rglob("history.jsonl"):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        dev_only = [{k: v for k, v in row.items() if not k.startswith("test/")} for row in rows]
        assert dev_only != rows
        path.write_text("".join(json.dumps(row) + "\n" for row in dev_only))
    assert data_of(tmp_path)["curves"] == curves


def test_curve_key_prefers_the_dev_metric():
    assert curve_key(["step", "dev/accuracy", "test/accuracy"], "accuracy") == "dev/accuracy"
    assert curve_key(["step", "dev/accuracy", "test/accuracy_m"], "accuracy_m") == "dev/accuracy"
    assert curve_key(["step", "dev/accuracy"], "accuracy_m") == "dev/accuracy"  # test evaluated at the end
    assert curve_key(["step", "test/accuracy_m"], "accuracy_m") == "test/accuracy_m"
    assert curve_key(["step", "accuracy"], "accuracy") == "accuracy"  # a run before dev sets
    assert curve_key(["step", "train_loss"], "accuracy") is None


def test_inference_latency_is_an_axis_where_bench_speed_measured_it(comparison, tmp_path):
    write_comparison(tmp_path)
    pd.DataFrame({
        "variant": ["dora", "lora"], "unmerged_ms": [3.5, 2.6], "merged_ms": [None, 2.1],
    }).to_csv(tmp_path / "speed_inference.csv", index=False)  # fmt: skip
    data = data_of(tmp_path)
    assert data["axes"][-1]["key"] == "inference_ms"
    latency = {p["variant"]: p["values"]["inference_ms"] for p in data["points"] if p["task"] == "rt_rating"}
    assert latency == {"dora": 3.5, "lora": 2.1, "full": None, "ia3": None}  # merged where it merges


def test_the_section_holds_the_data_and_the_bundle_by_its_path(comparison):
    data = data_of(comparison)
    data["points"][0]["config"] = "lr=1 </script><script>alert(1)"  # a label cannot end the data block
    section = explorer_section(data, "../../assets/plotly-9.9.9.min.js")
    payload = re.search(r'<script type="application/json" id="explorer-data">(.*?)</script>', section, re.S)
    assert json.loads(payload.group(1)) == data
    assert '<script src="../../assets/plotly-9.9.9.min.js"></script>' in section
    assert (
        '<option value="trainable_params" selected>' in section
        and '<option value="mean_x100" selected>' in section
    )
    assert section.count('name="variant"') == 4 and section.count('name="task"') == 3
    assert "http" not in section.split('id="explorer-data"')[0]
