"""bench.analysis.sweep_leaderboard: the tuned leaderboard of one sweep's runs, written into its folder."""

from __future__ import annotations

import pandas as pd
import pytest
from helpers.markdown import md_row
from scipy import stats

from bench.analysis.sweep_leaderboard import sweep_runs, write_sweep_leaderboard


def test_write_sweep_leaderboard_uses_only_the_sweeps_rows(results):
    sweep = results / "sweeps" / "2024-05-03_09-00-00_cola"
    md = write_sweep_leaderboard(sweep, sweep_runs(sweep, results / "runs.csv"))
    assert md == sweep / "leaderboard.md"
    text = md.read_text()
    assert text.startswith("# Leaderboard of sweep 2024-05-03_09-00-00_cola")
    full, lora = md_row(text, "cola", "full"), md_row(text, "cola", "lora")
    assert [full[c] for c in ("rank", "hparams", "mean_x100", "ci95_x100", "n", "tied")] == [
        "1", "lr=2e-05", "64.00", "12.71", "2", "yes",
    ]  # fmt: skip
    assert [lora[c] for c in ("rank", "hparams", "mean_x100", "ci95_x100", "n", "tied")] == [
        "2", "lr=0.0005 r=8", "62.00", "4.97", "3", "yes",
    ]  # fmt: skip
    assert "sst2" not in text and "| avg |" not in text
    table = pd.read_csv(sweep / "leaderboard.csv")  # the tuned view with every column
    assert table[["variant", "n", "mean_x100", "std_x100"]].values.tolist() == [
        ["full", 2, 64.0, pytest.approx(2**0.5, rel=1e-12)],  # in full
        ["lora", 3, 62.0, 2.0],
    ]
    p = stats.ttest_ind([63.0, 65.0], [60.0, 62.0, 64.0], equal_var=False).pvalue
    assert table["p_vs_best"].tolist() == [1.0, pytest.approx(p, abs=1e-4)]


def test_sweep_runs_of_an_unknown_sweep_name_the_sweeps_there(results):
    with pytest.raises(ValueError, match=r"no runs of sweep .*elsewhere.*; sweeps there: .*_cola"):
        sweep_runs(results / "elsewhere", results / "runs.csv")
