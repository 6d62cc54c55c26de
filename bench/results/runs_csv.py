"""The runs CSV, ``<results>/runs.csv``: one row per run, appended under a lock by every run.

``run_row`` flattens a run's metrics.json into a row (the sweep-folder reader of
``bench.analysis.runs_table`` uses it too). ``locate`` is the one place that upgrades older files: a
legacy ``leaderboard.csv`` with the runs columns beside a missing ``runs.csv`` is renamed to
``runs.csv``, and a runs CSV written before a column was added gets it (empty), each with a one-line
notice. The lock is a hidden file, ``.runs.csv.lock``, beside the CSV.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from filelock import FileLock

from bench.inputs.metrics import DEV, TEST
from bench.log import log
from bench.results.columns import ADDED_COLUMNS, RUNS_COLUMNS

RUNS_CSV = "runs.csv"
LEGACY_CSV = "leaderboard.csv"  # the runs CSV's name before runs.csv
LOCK_TIMEOUT_S = 120


def test_score(values: dict[str, Any], main: str | None) -> Any:
    """The reported number in a run's metrics: ``test/<main>`` (a run recorded before the dev and test
    roles has the bare ``<main>``); "" when absent."""
    return values.get(f"{TEST}/{main}", values.get(main, ""))


def run_row(metrics: dict[str, Any]) -> dict[str, Any]:
    """Flatten a run's metrics.json into one runs-CSV row (JSON for the nested parts)."""
    main = metrics.get("main_metric")
    best = metrics.get("best", {})
    row = {c: metrics.get(c, "") for c in RUNS_COLUMNS}
    row["score"] = test_score(best, main)
    row["dev_score"] = best.get(f"{DEV}/{metrics.get('dev_metric')}", "")
    row["final_score"] = test_score(metrics.get("final", {}), main)
    row["chance_score"] = test_score(metrics.get("chance", {}), main)
    row["metrics"] = json.dumps(metrics.get("best", {}), sort_keys=True)
    row["final_metrics"] = json.dumps(metrics.get("final", {}), sort_keys=True)
    row["hparams"] = json.dumps(metrics.get("hparams", {}), sort_keys=True, default=str)
    row["label_hparams"] = json.dumps(list(metrics.get("label_hparams", [])))
    row["settings"] = (
        json.dumps(metrics["settings"], sort_keys=True, default=str) if metrics.get("settings") else ""
    )
    row["lr"] = metrics.get("hparams", {}).get("lr", "")
    row["error"] = " ".join(str(metrics.get("error") or "").split())[:500]
    return {k: "" if v is None else v for k, v in row.items()}


def lock_path(path: Path) -> Path:
    """The hidden lock file beside a CSV: ``.runs.csv.lock``."""
    return path.with_name(f".{path.name}.lock")


def header(path: Path) -> list[str] | None:
    """The CSV's column names, or None when the file is missing or empty."""
    if not path.is_file():
        return None
    with path.open(newline="") as f:
        return next(csv.reader(f), None)


def is_runs_table(columns: list[str] | None) -> bool:
    """Whether a header holds every runs column (a column added later may be missing)."""
    return columns is not None and set(RUNS_COLUMNS) - set(ADDED_COLUMNS) <= set(columns)


def locate(path: str | Path) -> Path:
    """The runs CSV at ``path``, after upgrading an older file there (see the module docstring)."""
    path = Path(path)
    legacy = path.with_name(LEGACY_CSV)
    needs_rename = path.name == RUNS_CSV and not path.exists() and is_runs_table(header(legacy))
    if not needs_rename and header(path) in (None, RUNS_COLUMNS):
        return path
    with FileLock(str(lock_path(path)), timeout=LOCK_TIMEOUT_S):
        _upgrade(path)
    return path


def _upgrade(path: Path) -> None:
    """``locate``'s work, with the lock held."""
    legacy = path.with_name(LEGACY_CSV)
    if path.name == RUNS_CSV and not path.exists() and is_runs_table(header(legacy)):
        legacy.rename(path)
        log.warning(f"renamed the runs CSV {legacy} to {path} (its new name)")
    columns = header(path)
    if columns in (None, RUNS_COLUMNS) or not is_runs_table(columns) or not set(columns) <= set(RUNS_COLUMNS):
        return  # current, not a runs CSV, or from a newer version: left as it is
    with path.open(newline="") as f:
        rewrite(path, list(csv.DictReader(f)))
    added = [c for c in RUNS_COLUMNS if c not in columns]
    log.warning(f"added the column(s) {', '.join(added)} to {path}")


def rewrite(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` as the runs CSV at ``path`` in the current columns, atomically (a temporary file,
    then a rename); the caller holds the lock."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=RUNS_COLUMNS, extrasaction="ignore", restval="")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def append_row(path: str | Path, row: dict[str, Any], unless_run_dir_present: bool = False) -> bool:
    """Append one row under the lock; returns False when ``unless_run_dir_present`` found its run_dir.

    The row is formatted in memory and written with a single write while the lock is held, so a crash
    never leaves half a row, and the header is written only by the writer that creates the file; a write
    that fails (a full disk) is cut back to the rows before it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    csv.DictWriter(buf, fieldnames=RUNS_COLUMNS).writerow(row)
    with FileLock(str(lock_path(path)), timeout=LOCK_TIMEOUT_S):
        _upgrade(path)
        new = not path.exists() or path.stat().st_size == 0
        if unless_run_dir_present and not new:
            with path.open(newline="") as f:
                if any(r.get("run_dir") == row["run_dir"] for r in csv.DictReader(f)):
                    return False
        size = 0 if new else path.stat().st_size
        try:
            with path.open("a", newline="") as f:
                f.write((",".join(RUNS_COLUMNS) + "\r\n" if new else "") + buf.getvalue())
                f.flush()
        except OSError:  # a full disk mid-write: cut back to the rows before, never half a row
            with path.open("r+b") as f:
                f.truncate(size)
            raise
    return True


class RunsCsv:
    """The always-on sink: one row per run in the runs CSV (parallel writers are safe)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def start(self, run: dict[str, Any]) -> None:
        """Nothing to stream: the CSV gets one row when the run ends."""

    def log(self, values: dict[str, float], step: int) -> None:
        """Nothing to stream: the CSV gets one row when the run ends."""

    def finish(self, metrics: dict[str, Any]) -> None:
        append_row(self.path, run_row(metrics))

    def recover(self, metrics: dict[str, Any]) -> None:
        """Resume: add an earlier run's row if the CSV lacks it (killed between metrics.json and its row)."""
        append_row(self.path, run_row(metrics), unless_run_dir_present=True)
