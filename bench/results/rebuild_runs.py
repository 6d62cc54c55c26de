"""The ``rebuild_runs`` command: the runs CSV written again from the run folders, which are the truth.

    python -m bench rebuild_runs                   # results/runs.csv from the run folders under results/
    python -m bench rebuild_runs --results DIR     # the runs CSV of another results folder

Each run folder's metrics.json gives its row (``run_row``, the row the run appended when it ended), in
the order the runs ended. The run folders are those under the results folder (found as the results index
finds them), plus any folder elsewhere that a readable row of the old file names. A metrics.json that
does not parse is named and left out. The old file, damaged or not, is kept beside the new one as
``runs.csv.bak-<time>``; the new one replaces it atomically, under the CSV's lock. A file that already
holds exactly these rows is left as it is, so a second rebuild changes nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from filelock import FileLock

from bench.log import log
from bench.plural import plural
from bench.results.index import run_folders
from bench.results.run_folder import RunFolder, default_results, recorded_path
from bench.results.runs_csv import (
    LOCK_TIMEOUT_S,
    RUNS_CSV,
    csv_text,
    keep_aside,
    locate,
    lock_path,
    read_rows,
    rewrite,
    run_row,
)


def folder_rows(results: Path, old_rows: list[dict[str, str]]) -> tuple[list[dict[str, Any]], int]:
    """The rows of the run folders, in the order the runs ended, and how many of ``old_rows`` name no
    run folder (their run folder is gone, or they name none)."""
    folders = {p.resolve(): p for p in run_folders(results)}
    unfound = 0
    for old in old_rows:
        folder = recorded_path(old["run_dir"], results) if old.get("run_dir") else None
        if folder is None or not RunFolder(folder).metrics_path.is_file():
            unfound += 1
        else:
            folders.setdefault(folder.resolve(), folder)
    rows = []
    for folder in folders.values():
        run = RunFolder(folder)
        try:
            metrics = run.metrics()
        except (OSError, ValueError):
            metrics = None
        if isinstance(metrics, dict):
            rows.append(run_row(metrics))
        else:
            log.warning(f"left out {run.metrics_path}: it does not parse (cut short?)")
    return sorted(rows, key=lambda r: (str(r["timestamp"]), str(r["run_dir"]))), unfound


def rebuild(results: Path) -> str:
    """Write the runs CSV of ``results`` from its run folders (see the module docstring); one line
    saying what was done."""
    csv_path = locate(results / RUNS_CSV)
    with FileLock(str(lock_path(csv_path)), timeout=LOCK_TIMEOUT_S):
        old = read_rows(csv_path)
        rows, unfound = folder_rows(results, old.rows)
        if not csv_path.is_file() and not rows:
            return f"no run folders under {results} and no {csv_path}: nothing to rebuild"
        if csv_path.is_file() and csv_path.read_bytes() == csv_text(rows).encode():
            return f"{csv_path} already holds the rows of {plural(len(rows), 'run folder')}: left as it is"
        aside = keep_aside(csv_path) if csv_path.is_file() else None
        rewrite(csv_path, rows)
    said = f"rebuilt {csv_path} from {plural(len(rows), 'run folder')}"
    if aside is not None:
        said += f"; the previous file is kept as {aside}"
    if unfound:
        said += f" ({plural(unfound, 'row')} of it named no run folder)"
    return said


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="peft-bench rebuild_runs", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--results", default=default_results(), help="the results folder (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    results = Path(args.results)
    if not results.is_dir():
        parser.error(f"--results {results}: no such folder")
    print(rebuild(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
