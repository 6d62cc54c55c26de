"""failed_runs and killed runs: a killed run's leftover folder is listed (and pruned) as killed, never a
run still running nor Hydra's own config; a sweep's runs that never started are counted by its summary."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from bench.results import failed_runs
from bench.results.run_folder import RunFolder, error_log
from bench.results.sweep_callback import failure_summary


def started(results: Path, name: str, metrics: dict | None = None) -> RunFolder:
    """A run folder whose run started (config.yaml; Hydra's .hydra/config.yaml too), with ``metrics``
    as its metrics.json if given."""
    folder = RunFolder(results / "runs" / name)
    (folder.path / ".hydra").mkdir(parents=True)
    (folder.path / ".hydra" / "config.yaml").write_text("seed: 0\n")
    folder.write_config("seed: 0\n")
    if metrics is not None:
        folder.write_metrics(metrics)
    return folder


def test_a_killed_runs_leftover_is_listed_and_pruned_as_killed_but_never_a_running_one(tmp_path, capsys):
    first_state = {"status": "failed", "error": None, "config_hash": "abc", "run_name": "lora-x-s0"}
    started(tmp_path, "killed")  # SIGKILLed before its metrics.json
    started(tmp_path, "cut", first_state)  # a metrics.json without the end's timestamp
    running = started(tmp_path, "running")
    ended = started(
        tmp_path, "ended", {**first_state, "status": "completed", "timestamp": "2026-01-01T00:00:00"}
    )
    (tmp_path / "hydra-only" / ".hydra").mkdir(parents=True)  # Hydra's folder of a run that never started
    (tmp_path / "hydra-only" / ".hydra" / "config.yaml").write_text("seed: 0\n")
    with running.running():
        assert failed_runs.main(["--results", str(tmp_path)]) == 0
        out = capsys.readouterr().out
        assert f"killed      {tmp_path / 'runs' / 'killed'}  (started, never ended)" in out
        assert f"killed      {tmp_path / 'runs' / 'cut'}  (started, never ended)" in out
        assert "runs/running" not in out and "runs/ended" not in out and "hydra-only" not in out
        assert "0 runs-CSV rows, 2 run folders; --prune deletes them" in out
        assert failed_runs.main(["--results", str(tmp_path), "--prune"]) == 0
        assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["ended", "running"]
    assert running.is_leftover()  # its run holds it no more: killed
    assert not ended.is_leftover() and failed_runs.run_status(ended.path) == "completed"


def test_a_sweeps_runs_that_never_started_are_counted_with_their_tracebacks(tmp_path):
    """A config error or a refused folder leaves no run folder: its error log stands for it."""
    sweep = tmp_path / "sweeps" / "s"
    since = dt.datetime(2026, 12, 1, 13)
    new = error_log(tmp_path, sweep / "3_lora-x-s0")
    old = error_log(tmp_path, sweep / "0_lora-x-s1")
    elsewhere = error_log(tmp_path, tmp_path / "sweeps" / "t" / "0_lora-x-s0")
    for log, when in [(new, since), (old, since - dt.timedelta(hours=1)), (elsewhere, since)]:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("Traceback (most recent call last):\n")
        os.utime(log, (when.timestamp(), when.timestamp()))
    assert new == tmp_path / "errors" / "sweeps" / "s" / "3_lora-x-s0.txt"
    unstarted = failed_runs.unstarted_since(tmp_path, sweep, since)
    assert unstarted == {new: "failed"}
    failed_run = sweep / "1_lora-x-s2"
    failed_run.mkdir(parents=True)
    (failed_run / "error.txt").write_text("Traceback (most recent call last):\n")
    line = failure_summary({failed_run: "failed", sweep / "2_lora-x-s3": "interrupted", **unstarted})
    assert line.startswith(
        f"sweep: 3 runs did not complete (failed: 2, interrupted: 1), see: {failed_run / 'error.txt'} "
        f"{sweep / '2_lora-x-s3'} {new} "
    )  # each one's traceback where it has one (an interrupted run has none): no file named is missing


def test_error_logs_mirror_the_run_folders_under_the_results_folder(tmp_path):
    assert error_log(tmp_path, tmp_path / "compare" / "rt_polarity" / "lora-lrx0.25-s0") == (
        tmp_path / "errors" / "compare" / "rt_polarity" / "lora-lrx0.25-s0.txt"
    )
    outside = Path("/elsewhere/runs/x")
    assert error_log(tmp_path, outside) == tmp_path / "errors" / "elsewhere" / "runs" / "x.txt"
    assert error_log("results", "results/runs/a") == Path("results/errors/runs/a.txt")  # as results is given
