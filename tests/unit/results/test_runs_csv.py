"""The runs CSV: a run's row flattened from its metrics.json, a legacy leaderboard.csv migrated (renamed,
columns added) by writers and readers alike, and the lock kept hidden."""

from __future__ import annotations

import csv
import json

from helpers.notices import notices
from helpers.results import write_results

from bench.analysis import runs_table
from bench.results.columns import ADDED_COLUMNS, RUNS_COLUMNS
from bench.results.runs_csv import RunsCsv, locate, run_row

LEGACY_COLUMNS = [c for c in RUNS_COLUMNS if c not in ADDED_COLUMNS]


def legacy_results(root):
    """A results folder as an older version wrote it: ``leaderboard.csv`` without the added columns."""
    path = write_results(root)
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    with (root / "leaderboard.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=LEGACY_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    path.unlink()
    return rows


def read(path):
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def visible(folder):
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".") and p.is_file())


def metrics(run_dir: str) -> dict:
    return {"status": "completed", "variant": "lora", "run_dir": run_dir, "label_hparams": ["lr", "r"]}


def test_run_row_flattens_metrics_json(results):
    metrics = json.loads(next((results / "runs").glob("*_lora-mrpc-s0/metrics.json")).read_text())
    row = run_row(metrics)
    assert list(row) == RUNS_COLUMNS
    assert (row["score"], json.loads(row["metrics"]), json.loads(row["label_hparams"])) == (
        0.88,
        {"accuracy": 0.88, "f1": 0.91},
        ["lr", "r"],
    )


def test_a_reader_migrates_a_legacy_leaderboard_csv(tmp_path, caplog):
    old = legacy_results(tmp_path)
    runs = runs_table.load(tmp_path)
    err = notices(caplog)
    assert f"renamed the runs CSV {tmp_path / 'leaderboard.csv'} to {tmp_path / 'runs.csv'}" in err
    added = [c for c in RUNS_COLUMNS if c in ADDED_COLUMNS]  # named in the CSV's column order
    assert f"added the column(s) {', '.join(added)} to {tmp_path / 'runs.csv'}" in err
    assert visible(tmp_path) == ["runs.csv"]
    columns, rows = read(tmp_path / "runs.csv")
    assert columns == RUNS_COLUMNS and [r["run_dir"] for r in rows] == [r["run_dir"] for r in old]
    assert all(r[c] == "" for r in rows for c in ADDED_COLUMNS)
    assert len(runs) == len(old) - 2  # latest row per config hash, as before
    runs_table.load(tmp_path)
    again = notices(caplog)
    assert "renamed" not in again and "added the column" not in again  # once only


def test_a_writer_migrates_then_appends(tmp_path):
    old = legacy_results(tmp_path)
    RunsCsv(tmp_path / "runs.csv").finish(metrics("/r/new"))
    columns, rows = read(tmp_path / "runs.csv")
    assert columns == RUNS_COLUMNS and len(rows) == len(old) + 1
    assert rows[-1]["run_dir"] == "/r/new" and json.loads(rows[-1]["label_hparams"]) == ["lr", "r"]
    assert visible(tmp_path) == ["runs.csv"]  # the lock is the hidden .runs.csv.lock


def test_an_aggregate_leaderboard_csv_is_left_alone(tmp_path):
    (tmp_path / "leaderboard.csv").write_text("rank,task\n1,cola\n")  # a sweep's aggregate table
    assert locate(tmp_path / "runs.csv") == tmp_path / "runs.csv"
    RunsCsv(tmp_path / "runs.csv").finish(metrics("/r/1"))
    assert visible(tmp_path) == ["leaderboard.csv", "runs.csv"] and len(read(tmp_path / "runs.csv")[1]) == 1


def test_an_existing_runs_csv_wins_over_a_legacy_one(tmp_path, caplog):
    old = legacy_results(tmp_path)
    RunsCsv(tmp_path / "runs.csv").finish(metrics("/r/1"))
    (tmp_path / "leaderboard.csv").write_text((tmp_path / "runs.csv").read_text())  # a stale copy
    RunsCsv(tmp_path / "runs.csv").finish(metrics("/r/2"))
    assert len(read(tmp_path / "runs.csv")[1]) == len(old) + 2
    assert len(read(tmp_path / "leaderboard.csv")[1]) == len(old) + 1


def test_recover_appends_to_a_new_file_with_its_header(tmp_path):
    sink = RunsCsv(tmp_path / "sub" / "runs.csv")
    sink.recover(metrics("/r/1"))
    sink.recover(metrics("/r/1"))
    columns, rows = read(tmp_path / "sub" / "runs.csv")
    assert columns == RUNS_COLUMNS and [r["run_dir"] for r in rows] == ["/r/1"]
    assert rows[0] == {k: str(v) for k, v in run_row(metrics("/r/1")).items()}


def test_a_runs_csv_with_unknown_columns_is_left_as_it_is(tmp_path):
    text = ",".join([*RUNS_COLUMNS, "from_a_newer_version"]) + "\n"
    (tmp_path / "runs.csv").write_text(text)
    assert locate(tmp_path / "runs.csv").read_text() == text
