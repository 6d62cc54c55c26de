"""bench.analysis.diff: the settings in which the rows of one (task, variant, model) differ
(``peft-bench leaderboard --diff``)."""

from __future__ import annotations

from io import StringIO

import pandas as pd
from helpers.results import write_dora_runs

from bench.analysis import leaderboard, runs_table
from bench.analysis.diff import differences


def test_diff_lists_the_settings_rows_differ_in(compose, tmp_path, capsys):
    write_dora_runs(
        compose,
        tmp_path,
        [
            ([], 0, 0.80),
            ([], 1, 0.80),
            (["train.weight_decay=0.1"], 0, 0.80),
            (["model.max_length=64"], 0, 0.80),
        ],
    )
    assert leaderboard.main(["--results", str(tmp_path), "--diff"]) == 0
    out = capsys.readouterr().out
    assert "## rt_polarity / dora / minilm: 3 rows differ in 2 settings" in out
    assert "| hparams | model.max_length | train.weight_decay |" in out
    assert "| lr=0.0005 r=8 model.max_length=64 train.weight_decay=0.01 | 64 | 0.01 |" in out
    assert leaderboard.main(["--results", str(tmp_path), "--diff", "--format", "csv"]) == 0
    diff = pd.read_csv(StringIO(capsys.readouterr().out))
    assert diff.columns.tolist() == ["task", "variant", "model", "hparams", "setting", "value"]
    assert sorted(set(diff["setting"])) == ["model.max_length", "train.weight_decay"] and len(diff) == 6


def test_diff_of_older_runs_compares_their_hparams(results, capsys):
    """Rows of a CSV written before config_key fall back to label grouping; --diff compares hparams."""
    runs = runs_table.load_runs(results / "runs.csv")
    assert runs["row_key"].str.startswith("label:").all()
    diff = differences(runs)
    assert diff[["task", "variant", "setting"]].drop_duplicates().values.tolist() == [["sst2", "lora", "lr"]]
    assert leaderboard.main(["--results", str(results), "--diff", "--task", "cola"]) == 0
    assert "No (task, variant, model) has rows that differ" in capsys.readouterr().out


def test_diff_sorts_numbers_numerically(compose, tmp_path, capsys):
    scales = [16, 4, 256, 1, 64]  # as text: 1, 16, 256, 4, 64
    write_dora_runs(compose, tmp_path, [([f"train.lr_scale={s}"], 0, 0.80) for s in scales])
    diff = differences(runs_table.load(tmp_path / "runs.csv"))
    assert diff["setting"].unique().tolist() == ["train.lr_scale"]
    assert diff["value"].tolist() == ["1", "4", "16", "64", "256"]
    assert leaderboard.main(["--results", str(tmp_path), "--diff"]) == 0
    rows = [line.split(" | ")[-1].strip(" |") for line in capsys.readouterr().out.splitlines()[4:] if line]
    assert rows == ["1", "4", "16", "64", "256"]
