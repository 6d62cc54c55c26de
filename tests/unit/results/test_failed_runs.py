"""Failed runs: listed, pruned without touching a completed run, and a sweep that had them exits 1."""

from __future__ import annotations

import datetime as dt
import errno
import json
from pathlib import Path

import pytest
from helpers.notices import notices
from helpers.report_results import metrics_json
from helpers.runs import read_rows

from bench.analysis.runs_table import load_runs
from bench.results import failed_runs
from bench.results.runs_csv import RUNS_CSV, append_row, run_row
from bench.results.sweep_callback import failure_summary


def record(results: Path, folder: str, status: str, *, seed: int = 0, lr: float = 1e-3, row: bool = True,
           started: str = "2026-12-01T13:00:00") -> Path:  # fmt: skip
    """A run folder with its metrics.json (and, with ``row``, its runs-CSV row)."""
    run_dir = results / folder
    run_dir.mkdir(parents=True)
    m = metrics_json("rt_polarity", "lora", lr, seed, run_dir) | {"status": status, "started_at": started}
    if status != "completed":
        m |= {"best": {}, "error": f"ValueError: {folder} went wrong"}
    (run_dir / "metrics.json").write_text(json.dumps(m))
    if row:
        append_row(results / RUNS_CSV, run_row(m))
    return run_dir


@pytest.fixture
def results(tmp_path):
    """Completed, failed, oom, interrupted and diverged runs; a failed run superseded in its own folder
    (its row failed, its metrics.json completed: experiment=compare reuses folders); a failed folder
    without a row."""
    record(tmp_path, "runs/ok", "completed")
    record(tmp_path, "runs/bad", "failed", seed=1)
    record(tmp_path, "runs/big", "oom", seed=2)
    record(tmp_path, "runs/stopped", "interrupted", lr=3e-4)
    record(tmp_path, "runs/nan", "diverged", lr=3e-4, seed=5)
    reused = record(tmp_path, "compare/lora-s3", "failed", seed=3)
    completed = metrics_json("rt_polarity", "lora", 1e-3, 3, reused) | {"timestamp": "2026-12-01T14:00:00"}
    (reused / "metrics.json").write_text(json.dumps(completed))
    append_row(tmp_path / RUNS_CSV, run_row(completed))
    record(tmp_path, "runs/orphan", "failed", seed=4, row=False)
    return tmp_path


def test_listing_names_each_failed_run_and_changes_nothing(results, capsys):
    before = (results / RUNS_CSV).read_text()
    assert failed_runs.main(["--results", str(results)]) == 0
    out = capsys.readouterr().out
    for name in ("runs/bad", "runs/big", "runs/stopped", "compare/lora-s3", "runs/orphan"):
        assert name in out
    assert "runs/nan" not in out and "runs/ok" not in out  # diverged is a result, not a failure
    assert "runs/orphan  (a run folder without a runs-CSV row)" in out
    assert "4 runs-CSV rows, 4 run folders; --prune deletes them" in out
    assert (results / RUNS_CSV).read_text() == before and (results / "runs/bad").is_dir()


def test_prune_deletes_failed_rows_and_folders_and_keeps_every_completed_run(results, capsys):
    assert failed_runs.main(["--results", str(results), "--prune"]) == 0
    assert "pruned 4 runs-CSV rows and 4 run folders" in capsys.readouterr().out
    rows = read_rows(results / RUNS_CSV)
    assert sorted(r["status"] for r in rows) == ["completed", "completed", "diverged"]
    assert {p.parent.relative_to(results).as_posix() for p in results.glob("**/metrics.json")} == {
        "runs/ok", "runs/nan", "compare/lora-s3"
    }  # fmt: skip
    assert len(load_runs(results / RUNS_CSV)) == 3  # the CSV still reads
    assert failed_runs.main(["--results", str(results)]) == 0
    assert "no failed or oom or interrupted or killed runs" in capsys.readouterr().out


def test_status_chooses_what_is_listed_and_a_bad_one_is_named(results, capsys):
    failed_runs.main(["--results", str(results), "--status", "diverged"])
    out = capsys.readouterr().out
    assert "runs/nan" in out and "runs/bad" not in out
    with pytest.raises(SystemExit):
        failed_runs.main(["--results", str(results), "--status", "broken"])
    assert "unknown status broken; choose from failed, oom, interrupted, diverged" in capsys.readouterr().err


def test_a_sweep_counts_only_its_own_failures(tmp_path):
    record(tmp_path, "0_a", "failed", started="2026-12-01T12:00:00")  # an earlier invocation's
    record(tmp_path, "1_b", "oom", started="2026-12-01T13:00:00")
    record(tmp_path, "2_c", "interrupted", started="2026-12-01T13:00:05")
    record(tmp_path, "3_d", "diverged", started="2026-12-01T13:00:09")
    failed = failed_runs.failed_since(tmp_path, dt.datetime(2026, 12, 1, 13))
    assert {p.name: s for p, s in failed.items()} == {"1_b": "oom", "2_c": "interrupted"}
    line = failure_summary(failed)
    first = tmp_path / "1_b"
    assert line.startswith(f"sweep: 2 runs did not complete (interrupted: 1, oom: 1), see: {first} ")
    assert "\n" not in line and "error.txt" not in line  # neither has one: none is named


def test_the_leaderboard_hides_and_counts_a_failure_a_completed_rerun_supersedes(results, caplog):
    runs = load_runs(results / RUNS_CSV)
    assert "hid 1 failed run that a completed rerun of the same config supersedes" in notices(caplog)
    reused = runs[runs["run_dir"].str.endswith("compare/lora-s3")]
    assert list(reused["status"]) == ["completed"]  # one row for that config, the completed one
    assert sorted(runs["status"]) == ["completed", "completed", "diverged", "failed", "interrupted", "oom"]


def test_a_full_disk_mid_row_leaves_the_runs_csv_as_it_was(results, monkeypatch):
    csv_path = results / RUNS_CSV
    before = csv_path.read_bytes()
    real_open = Path.open

    def full_disk_open(self, mode="r", *args, **kwargs):
        f = real_open(self, mode, *args, **kwargs)
        if self == csv_path and mode == "a":
            real_write = f.write

            def half_then_full(text):
                real_write(text[: len(text) // 2])
                f.flush()
                raise OSError(errno.ENOSPC, "No space left on device")

            f.write = half_then_full
        return f

    monkeypatch.setattr(Path, "open", full_disk_open)
    row = run_row(metrics_json("rt_polarity", "lora", 3e-4, 9, results / "runs/new"))
    with pytest.raises(OSError, match="No space left on device"):
        append_row(csv_path, row)
    monkeypatch.undo()
    assert csv_path.read_bytes() == before
    assert len(load_runs(csv_path)) == 6
