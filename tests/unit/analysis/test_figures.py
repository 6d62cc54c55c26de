"""bench.analysis.figures: the report's static plots (memory by what holds it beside the score, the
critical-difference diagram), on helpers.report_results' comparison (3 tasks x 4 variants, known answers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.report_results import write_comparison

from bench.analysis import report, runs_table
from bench.analysis.configurations import tuned_board
from bench.analysis.figures import Style, cd_figure, memory_figure
from bench.analysis.significance import friedman


@pytest.fixture(scope="module")
def comparison(tmp_path_factory) -> Path:
    """The folder of helpers.report_results' comparison (3 tasks x 4 variants): run folders and runs.csv."""
    folder = tmp_path_factory.mktemp("comparison")
    write_comparison(folder)
    return folder


def comparison_rows(folder: Path) -> tuple[pd.DataFrame, Style]:
    """The comparison's selected rows and its plot style."""
    runs = runs_table.load(folder)
    rows = report.selected_rows(tuned_board(runs, full=True))
    return rows, Style(rows)


def test_memory_bars_stack_what_holds_each_variants_memory_beside_its_score(comparison):
    rows, style = comparison_rows(comparison)
    fig = memory_figure(rows, style)
    ax = fig.axes[0]
    d = rows[rows["task"] == ax.get_title()].sort_values("mean_x100")
    assert [t.get_text() for t in ax.get_yticklabels()] == list(d["variant"])
    full = d.reset_index(drop=True).index[d["variant"].to_numpy() == "full"][0]
    stacked = [p for p in ax.patches if abs(p.get_y() + p.get_height() / 2 - full) < 1e-9]
    parts = [c for c in runs_table.MEMORY_COLUMNS if c != "mem_peak_mb"]
    assert [round(p.get_width(), 6) for p in stacked] == [round(d[c].iloc[full], 6) for c in parts]
    scores = {t.get_text() for t in ax.texts}
    assert {f"{m:.1f}" for m in d["mean_x100"]} <= scores
    assert memory_figure(rows.assign(mem_peak_mb=np.nan), style) is None  # no run recorded a breakdown


def test_the_cd_diagram_places_each_variant_at_its_average_rank(comparison):
    rows, style = comparison_rows(comparison)
    fig = cd_figure(friedman(rows), style)
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert all(f"{v} ({rank})" in texts or f"({rank}) {v}" in texts for v, rank in
               [("dora", 1), ("lora", 2), ("full", 3), ("ia3", 4)]), texts  # fmt: skip
