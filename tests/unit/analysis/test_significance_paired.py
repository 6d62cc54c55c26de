"""bench.analysis.significance with test predictions: the paired bootstrap + Holm marks the ties and sets
the CIs of a task whose runs kept their predictions; a task without them keeps Welch's t-test, and each
row says which test marked it (``tie_test``)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.paired_runs import flip, write_task

from bench.analysis import runs_table
from bench.analysis.configurations import configurations, tuned_board
from bench.analysis.selection import tuned
from bench.analysis.significance import PAIRED, WELCH, mark_ties, task_verdicts

LABELS = np.random.default_rng(0).integers(0, 2, 2000)
PARAMS = {"best": 22_000_000, "same": 100_000, "twin": 100_000, "worse": 50_000}


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    root = tmp_path_factory.mktemp("paired")
    best = [flip(LABELS, 0.15, s) for s in range(3)]
    variants = {
        "best": best,
        "same": [p.copy() for p in best],  # identical predictions: tied, p high
        "twin": [p.copy() for p in best],  # the same, at the same cost as "same"
        "worse": [flip(LABELS, 0.25, 10 + s) for s in range(3)],  # 10 points lower: apart
    }
    write_task(root, "t", LABELS, variants, PARAMS)
    runs = runs_table.load(root)
    return root, runs, tuned_board(runs, full=True, source=root).set_index("variant")


def test_paired_marks_ties_with_holm(board):
    _, _, table = board
    assert set(table["tie_test"]) == {PAIRED}
    assert table.at["best", "p_vs_best"] == 1.0 and table.at["best", "tied"] is True
    assert table.at["same", "p_vs_best"] > 0.5 and table.at["same", "tied"] is True
    assert table.at["worse", "p_vs_best"] < 0.05 and table.at["worse", "tied"] is False


def test_paired_cis_contain_the_mean_and_are_the_bootstraps(board):
    _, _, table = board
    for v in PARAMS:
        low, high, mean = table.loc[v, ["ci_low_x100", "ci_high_x100", "mean_x100"]]
        assert low < mean < high
        assert table.at[v, "ci95_x100"] == pytest.approx((high - low) / 2)


def test_reproducible_across_calls(board):
    root, runs, table = board
    again = tuned_board(runs, full=True, source=root).set_index("variant")
    assert again[["p_vs_best", "ci95_x100"]].equals(table[["p_vs_best", "ci95_x100"]])


def test_without_a_source_the_task_keeps_welch(board):
    _, runs, _ = board
    table = tuned_board(runs, full=True).set_index("variant")
    assert set(table["tie_test"]) == {WELCH}
    assert np.isnan(table.at["best", "ci_low_x100"])


def test_the_verdict_names_the_tied_cheapest_together(board):
    root, runs, _ = board
    marked = mark_ties(tuned(configurations(runs)), source=root)
    (verdict,) = task_verdicts(marked)
    assert verdict["best"]["variant"] == "best" and sorted(verdict["tied"]) == ["same", "twin"]
    assert sorted(verdict["cheapest"]["trainable parameters"]) == ["same", "twin"]
    assert verdict["tie_test"] == PAIRED
