"""Failed runs: list them, or prune them without touching a completed run.

    python -m bench failed_runs                       # list the failed, oom, interrupted and killed runs
    python -m bench failed_runs --prune               # delete their runs-CSV rows and run folders
    python -m bench failed_runs --status diverged     # the statuses to list (or prune), any of STATUSES

A failed run is a row of the runs CSV (``<results>/runs.csv``) with one of the chosen statuses, or a run
folder under the results folder whose metrics.json has one. A killed run (SIGKILL, a preempted job) left
a folder with no metrics.json (``RunFolder.is_leftover``: started, never ended, and no run holds it now):
its status is ``killed``. Pruning rewrites the CSV without those rows
(atomically, under the CSV's lock, so that a run finishing meanwhile keeps its row) and deletes a run
folder only when its own metrics.json still says the chosen status: a folder where a rerun of the same
configuration completed (experiment=compare reuses folders) is kept. The leaderboard already hides a
failure that a completed rerun of the same configuration supersedes; this removes the rest.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
from pathlib import Path
from typing import Any

from filelock import FileLock

from bench.log import log
from bench.plural import plural
from bench.results.run_folder import CONFIG, RunFolder, default_results, errors_of, recorded_path
from bench.results.runs_csv import LOCK_TIMEOUT_S, RUNS_CSV, keep_aside, locate, lock_path, read_rows, rewrite

KILLED = "killed"  # a run folder a killed run left: no status of its own (RunFolder.is_leftover)
STATUSES = ("failed", "oom", "interrupted", "diverged", KILLED)
FAILED = ("failed", "oom", "interrupted", KILLED)  # the default: runs that left no result for their config


def run_status(run_dir: Path) -> str | None:
    """``killed`` for a killed run's leftover folder, else the status in its metrics.json; None when it
    has none or it does not parse."""
    run = RunFolder(run_dir)
    return KILLED if run.is_leftover() else run.status()


def failed_since(folder: Path, since: dt.datetime, statuses: tuple[str, ...] = FAILED) -> dict[Path, str]:
    """The run folders under ``folder`` that started at or after ``since`` and have one of
    ``statuses``: what one sweep invocation failed (its skipped runs and earlier attempts left out)."""
    found = {}
    for run in RunFolder.under(folder):
        try:
            m = run.metrics()
            started = dt.datetime.fromisoformat(m["started_at"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if started >= since and m.get("status") in statuses:
            found[run.path] = m["status"]
    return found


def failed_rows(csv_path: Path, statuses: tuple[str, ...]) -> list[dict[str, Any]]:
    return [r for r in read_rows(csv_path).rows if r.get("status") in statuses]


def failed_folders(results: Path, statuses: tuple[str, ...]) -> list[Path]:
    """Run folders under ``results`` whose status (``run_status``) is one of ``statuses``."""
    started = {p.parent for p in results.glob(f"**/{CONFIG}") if not _hidden(p.relative_to(results))}
    folders = started | {run.path for run in RunFolder.under(results)}
    return sorted(p for p in folders if run_status(p) in statuses)


def _hidden(path: Path) -> bool:
    """Inside a hidden folder (Hydra's ``.hydra/config.yaml`` is no run's)."""
    return any(part.startswith(".") for part in path.parts[:-1])


def unstarted_since(results: Path, folder: Path, since: dt.datetime) -> dict[Path, str]:
    """The tracebacks of the runs at or below ``folder`` (a sweep's) that failed before they started (a
    config error, a folder holding another run), written at or after ``since``: {error log: failed}."""
    logs = errors_of(results, folder)
    return {
        p: "failed"
        for p in sorted(logs.glob("**/*.txt"))
        if dt.datetime.fromtimestamp(p.stat().st_mtime) >= since
    }


def find(results: Path, statuses: tuple[str, ...]) -> tuple[list[dict[str, Any]], list[Path]]:
    """The failed runs-CSV rows and the failed run folders (those of the rows and any others)."""
    csv_path = locate(results / RUNS_CSV)
    rows = failed_rows(csv_path, statuses)
    folders = set(failed_folders(results, statuses))
    for row in rows:
        folder = recorded_path(row["run_dir"], results) if row.get("run_dir") else None
        if folder is not None and run_status(folder) in statuses:
            folders.add(folder)
    return rows, sorted(folders)


def prune(results: Path, statuses: tuple[str, ...]) -> tuple[int, int]:
    """Delete the failed rows and folders; returns (rows removed, folders removed)."""
    csv_path = locate(results / RUNS_CSV)
    removed_rows = 0
    if csv_path.is_file():
        with FileLock(str(lock_path(csv_path)), timeout=LOCK_TIMEOUT_S):
            read = read_rows(csv_path)
            kept = [r for r in read.rows if r.get("status") not in statuses]
            removed_rows = len(read.rows) - len(kept)
            if removed_rows:
                if read.skipped:
                    log.warning(f"kept {csv_path} as {keep_aside(csv_path)}: its malformed lines are dropped")
                rewrite(csv_path, kept)
    _, folders = find(results, statuses)
    for folder in folders:
        if run_status(folder) in statuses:  # checked again: never a folder whose run completed since
            shutil.rmtree(folder)
    return removed_rows, len(folders)


def failed_listing(results: Path, rows: list[dict[str, Any]], folders: list[Path]) -> str:
    """One line per failed row (status, run, folder, error), then the failed folders without a row."""
    lines = [f"{r['status']:<11} {r['run_name']}  {r['run_dir']}  {r['error'][:120]}" for r in rows]
    listed = {recorded_path(r["run_dir"], results).resolve() for r in rows if r["run_dir"]}
    for p in folders:
        if p.resolve() not in listed:
            status = run_status(p)
            why = "started, never ended" if status == KILLED else "a run folder without a runs-CSV row"
            lines.append(f"{status:<11} {p}  ({why})")
    return "\n".join(lines)


def parse_statuses(text: str) -> tuple[str, ...]:
    chosen = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [s for s in chosen if s not in STATUSES]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"unknown status {', '.join(unknown) or repr(text)}; choose from {', '.join(STATUSES)}"
        )
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="peft-bench failed_runs", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--results", default=default_results(), help="the results folder (default: %(default)s)"
    )
    parser.add_argument(
        "--status",
        type=parse_statuses,
        default=FAILED,
        help=f"comma-separated, of {', '.join(STATUSES)} (default: {','.join(FAILED)})",
    )
    parser.add_argument("--prune", action="store_true", help="delete them (without it: only list them)")
    args = parser.parse_args(argv)
    results = Path(args.results)
    if not results.is_dir():
        parser.error(f"--results {results}: no such folder")
    rows, folders = find(results, args.status)
    if not rows and not folders:
        print(f"no {' or '.join(args.status)} runs in {results}")
        return 0
    print(failed_listing(results, rows, folders))
    if not args.prune:
        print(
            f"{plural(len(rows), 'runs-CSV row')}, {plural(len(folders), 'run folder')}; --prune deletes them"
        )
        return 0
    removed_rows, removed_folders = prune(results, args.status)
    print(
        f"pruned {plural(removed_rows, 'runs-CSV row')} and {plural(removed_folders, 'run folder')}; "
        "completed runs untouched"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
