"""bench.analysis.figures: the report's plots (bars from chance, every point named, the dev-selected lr
ringed, learning curves of the dev metric), the Pareto front and the bars' floor, on helpers.report_results'
comparison (3 tasks x 4 variants, known answers)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.report_results import TASKS, write_comparison

from bench.analysis import report, runs_table
from bench.analysis.configurations import configurations, tuned_board
from bench.analysis.figures import (
    APART_LABEL,
    TIED_LABEL,
    Style,
    bar_floor,
    bars_figure,
    cost_figure,
    curve_key,
    curves_figure,
    memory_figure,
    pareto_mask,
    sensitivity_figure,
)
from bench.analysis.selection import sensitivity


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


def test_bar_floor_is_chance_or_zero():
    assert bar_floor(np.array([70.0, 80.0]), 50.0) == 50.0  # chance, below every bar
    assert bar_floor(np.array([45.0, 80.0]), 50.0) == 0.0  # a bar (or its CI) below chance
    assert bar_floor(np.array([60.0, 80.0]), math.nan) == 0.0  # chance not recorded
    assert bar_floor(np.array([-5.0, 10.0]), 0.0) == -5.0  # a negative correlation
    assert bar_floor(np.array([5.0, 10.0]), 0.0) == 0.0  # a correlation's chance is zero


def test_bars_start_at_chance_and_mark_the_tied(comparison):
    rows, style = comparison_rows(comparison)
    fig = bars_figure(rows, style)
    for ax, task in zip(fig.axes, TASKS, strict=True):
        assert ax.get_ylim()[0] == 50.0, task  # chance: the majority class
        assert [t.get_text() for t in ax.get_xticklabels()] == ["dora", "lora", "full", "ia3"]
        marks = [t.get_text().split("\n")[0] for t in ax.texts if "n=" in t.get_text()]
        assert [m.split(" ", 1)[1] if " " in m else "" for m in marks] == ["best", "≈best", "", ""]
        assert "chance" in [t.get_text() for t in ax.texts]


def test_every_point_is_named(comparison):
    """Cost, sensitivity and curve plots: each panel names every variant and draws chance."""
    folder = comparison
    rows, style = comparison_rows(folder)
    runs = runs_table.load(folder)
    sens = sensitivity(configurations(runs))
    figures = [
        cost_figure(rows, "trainable_params", "trainable parameters", True, style),
        sensitivity_figure(sens, rows, style),
        curves_figure(runs, rows, folder, style)[0],
    ]
    for fig in figures:
        for ax in fig.axes[:3]:
            texts = [t.get_text() for t in ax.texts]
            assert sorted(t for t in texts if t != "chance") == ["dora", "full", "ia3", "lora"], texts
            assert texts.count("chance") == 1
    assert figures[2].axes[0].get_ylabel() == "dev/accuracy ×100"  # the curves: the dev metric
    rings = [c.get_offsets().tolist() for c in figures[1].axes[0].collections if 140 in c.get_sizes()]
    assert [[1e-3, 85.0]] in rings and [[3e-3, 80.0]] not in rings  # dora's: the lr with the best dev score


def curve_lines(folder: Path) -> list[list[tuple[list[float], list[float]]]]:
    """Each panel's lines of the learning curves figure (x, y)."""
    rows, style = comparison_rows(folder)
    fig, missing = curves_figure(runs_table.load(folder), rows, folder, style)
    assert missing == []
    return [[(list(ln.get_xdata()), list(ln.get_ydata())) for ln in ax.get_lines()] for ax in fig.axes]


def test_the_curves_need_no_test_metrics_in_the_history(comparison, tmp_path):
    """A run evaluates the test splits once at the end by default: its history.jsonl has dev metrics only,
    and its curves are those of a history with the test metrics beside them."""
    write_comparison(tmp_path)
    for path in tmp_path.rglob("history.jsonl"):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        dev_only = [{k: v for k, v in row.items() if not k.startswith("test/")} for row in rows]
        assert dev_only != rows
        path.write_text("".join(json.dumps(row) + "\n" for row in dev_only))
    assert curve_lines(tmp_path) == curve_lines(comparison) != []


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


def test_curve_key_prefers_the_dev_metric():
    assert curve_key(["step", "dev/accuracy", "test/accuracy"], "accuracy") == "dev/accuracy"
    assert curve_key(["step", "dev/accuracy", "test/accuracy_m"], "accuracy_m") == "dev/accuracy"
    assert curve_key(["step", "dev/accuracy"], "accuracy_m") == "dev/accuracy"  # test evaluated at the end
    assert curve_key(["step", "test/accuracy_m"], "accuracy_m") == "test/accuracy_m"
    assert curve_key(["step", "accuracy"], "accuracy") == "accuracy"  # a run before dev sets
    assert curve_key(["step", "train_loss"], "accuracy") is None


def test_pareto_mask():
    x = np.array([1.0, 2.0, 3.0, 4.0, 2.0])
    y = np.array([50.0, 60.0, 55.0, 70.0, 60.0])
    assert pareto_mask(x, y).tolist() == [True, True, False, True, False]  # ties: the first one


def filled_points(ax) -> tuple[set[tuple[float, float]], set[tuple[float, float]]]:
    """The (x, y) of the points drawn filled and of those drawn open (rings of the frontier aside)."""
    filled, open_ = set(), set()
    for c in ax.collections:
        if 140 in c.get_sizes() or not len(c.get_offsets()):
            continue
        faces = c.get_facecolor()
        side = filled if len(faces) and faces[0][3] > 0 else open_
        side |= {tuple(p) for p in c.get_offsets().tolist()}
    return filled, open_


def test_the_cost_plots_draw_the_tied_as_tied(comparison):
    """The best and the rows the leaderboard marks tied with it are filled, the rest open, in the legend."""
    rows, style = comparison_rows(comparison)
    for column in ("trainable_params", "peak_memory_mb", "train_time_s"):
        fig = cost_figure(rows, column, column, False, style)
        for ax, task in zip(fig.axes, TASKS, strict=True):
            d = rows[rows["task"] == task]
            at = {
                v: (float(x), float(y))
                for v, x, y in zip(d["variant"], d[column], d["mean_x100"], strict=True)
            }
            filled, open_ = filled_points(ax)
            assert (filled, open_) == ({at["dora"], at["lora"]}, {at["full"], at["ia3"]}), task
            assert {TIED_LABEL, APART_LABEL} <= set(ax.get_legend_handles_labels()[1])
    rows.loc[rows["variant"].eq("lora"), "tied"] = False  # the leaderboard's mark decides
    filled, open_ = filled_points(cost_figure(rows, "trainable_params", "p", True, style).axes[0])
    assert len(filled) == 1 and len(open_) == 3
