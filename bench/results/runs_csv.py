"""The runs CSV, ``<results>/runs.csv``: one row per run, appended under a lock by every run.

``run_row`` flattens a run's metrics.json into a row (the sweep-folder reader of
``bench.analysis.runs_table`` uses it too). ``locate`` is the one place that upgrades older files: a
legacy ``leaderboard.csv`` with the runs columns beside a missing ``runs.csv`` is renamed to
``runs.csv``, and a runs CSV written before a column was added gets it (empty), each with a one-line
notice. The lock is a hidden file, ``.runs.csv.lock``, beside the CSV.

Every reader goes through ``read_rows``. It reads records as the csv module does (a quoted field may
hold line breaks), but a record that does not parse (a quoted field left open by a crash, a field over
the parser's limit) or has more or fewer fields than the header costs only its first line: that line is
skipped and named (its number and why), and reading goes on from the next line, so an unclosed quote
never swallows the rows after it. ``append_row`` first ends a last line that a crash left without its
line break, so a new row never joins a damaged one. ``python -m bench rebuild_runs``
(``bench.results.rebuild_runs``) writes the file again from the run folders.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from filelock import FileLock

from bench.inputs.metrics import DEV, TEST
from bench.log import log
from bench.plural import plural
from bench.results.columns import ADDED_COLUMNS, RUNS_COLUMNS

RUNS_CSV = "runs.csv"
LEGACY_CSV = "leaderboard.csv"  # the runs CSV's name before runs.csv
LOCK_TIMEOUT_S = 120
NAMED_SKIPS = 10  # malformed lines named one by one in a read's notices; any more are counted


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
    row["memory_breakdown_mb"] = (
        json.dumps(metrics["memory_breakdown_mb"]) if metrics.get("memory_breakdown_mb") else ""
    )
    row["error"] = " ".join(str(metrics.get("error") or "").split())[:500]
    return {k: "" if v is None else v for k, v in row.items()}


def lock_path(path: Path) -> Path:
    """The hidden lock file beside a CSV: ``.runs.csv.lock``."""
    return path.with_name(f".{path.name}.lock")


def header(path: Path) -> list[str] | None:
    """The CSV's column names, or None when the file is missing or empty."""
    if not path.is_file():
        return None
    with path.open(newline="", encoding="utf-8", errors="replace") as f:
        line = f.readline()
    if not line:
        return None
    fields, _ = _fields(line)
    return fields if fields is not None else []


class RunsRows(NamedTuple):
    """A runs CSV as ``read_rows`` read it."""

    columns: list[str] | None  # the header; None for a missing or empty file
    rows: list[dict[str, str]]  # the well-formed rows, by column name
    skipped: list[tuple[int, str]]  # (line number, reason) of each malformed line


def read_rows(path: str | Path) -> RunsRows:
    """The header and the well-formed rows of a CSV; each malformed line is skipped and named in a notice
    (its number and why), so that damage never costs the other rows (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        return RunsRows(None, [], [])
    with path.open(newline="", encoding="utf-8", errors="replace") as f:
        lines = f.readlines()
    top = next((i for i, line in enumerate(lines) if line.strip()), len(lines))
    if top == len(lines):
        return RunsRows(None, [], [])
    columns = _fields(lines[top])[0] or []
    rows: list[dict[str, str]] = []
    skipped: list[tuple[int, str]] = []
    for i, fields in _records(lines, top + 1, len(columns)):
        if fields is None:
            skipped.append((i + 1, _why(lines[i], len(columns))))
        else:
            rows.append(dict(zip(columns, fields, strict=True)))
    _name_skipped(path, skipped)
    return RunsRows(columns, rows, skipped)


def _records(lines: list[str], start: int, width: int) -> Iterator[tuple[int, list[str] | None]]:
    """(index of its first line, its fields) per record of ``lines[start:]`` with ``width`` fields, and
    (index, None) per line where a record that does not parse, or has another width, begins; reading
    starts again on the line after that one. Blank lines are passed over."""
    while start < len(lines):
        reader = csv.reader((lines[j] for j in range(start, len(lines))), strict=True)
        first = start
        try:
            for fields in reader:
                if fields and len(fields) != width:
                    break
                if fields:
                    yield first, fields
                first = start + reader.line_num
            else:
                return
        except csv.Error:
            pass
        yield first, None
        start = first + 1


def _fields(line: str) -> tuple[list[str] | None, str]:
    """One line's fields, or None and why it does not parse."""
    try:
        return next(csv.reader([line], strict=True), []), ""
    except csv.Error as e:
        if "field limit" in str(e):
            limit = f"{csv.field_size_limit():,}"
            return None, f"a line of {len(line):,} characters: a field over the parser's limit of {limit}"
        if "unexpected end of data" in str(e):
            return None, "a quoted field is not closed (cut short by a crash?)"
        return None, f"does not parse as CSV: {e}"


def _why(line: str, width: int) -> str:
    """Why a record beginning on ``line`` was skipped: the line does not parse, or has another width."""
    fields, why = _fields(line)
    return why or _count_mismatch(len(fields or []), width)


def _count_mismatch(got: int, expected: int) -> str:
    if got < expected:
        return f"{got} of the header's {expected} fields (cut short by a crash?)"
    return f"{got} fields where the header has {expected}"


def _name_skipped(path: Path, skipped: list[tuple[int, str]]) -> None:
    for n, why in skipped[:NAMED_SKIPS]:
        log.warning("skipped a malformed run row (line %d of %s): %s", n, path, why)
    if len(skipped) > NAMED_SKIPS:
        log.warning("skipped %s more of %s", plural(len(skipped) - NAMED_SKIPS, "malformed line"), path)
    if skipped:
        log.warning(
            "read the other rows of %s; `peft-bench rebuild_runs --results %s` writes it again from the "
            "run folders",
            path,
            path.parent,
        )


def keep_aside(path: Path) -> Path:
    """A copy of ``path`` beside it, ``<name>.bak-<time>``, before a rewrite drops lines of it; its path."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.bak-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.bak-{stamp}-{n}")
    shutil.copy2(path, aside)
    return aside


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
    read = read_rows(path)
    if read.skipped:
        log.warning(f"kept {path} as {keep_aside(path)}: its malformed lines are dropped")
    rewrite(path, read.rows)
    added = [c for c in RUNS_COLUMNS if c not in columns]
    log.warning(f"added the column(s) {', '.join(added)} to {path}")


def csv_text(rows: list[dict[str, Any]]) -> str:
    """``rows`` as the text of a runs CSV: the header, then one line per row, in the current columns."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=RUNS_COLUMNS, extrasaction="ignore", restval="")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def rewrite(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` as the runs CSV at ``path`` in the current columns, atomically (a temporary file,
    then a rename); the caller holds the lock."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        f.write(csv_text(rows))
    tmp.replace(path)


def _unterminated(path: Path) -> bool:
    """Whether a non-empty file's last byte is not a line break (a row cut short by a crash)."""
    with path.open("rb") as f:
        f.seek(-1, io.SEEK_END)
        return f.read(1) not in (b"\n", b"\r")


def append_row(path: str | Path, row: dict[str, Any], unless_run_dir_present: bool = False) -> bool:
    """Append one row under the lock; returns False when ``unless_run_dir_present`` found its run_dir.

    The row is formatted in memory and written with a single write while the lock is held, so a crash
    never leaves half a row, and the header is written only by the writer that creates the file; a write
    that fails (a full disk) is cut back to the rows before it. A last line without its line break (cut
    short by a crash, or an editor) is ended first, so the new row stands on a line of its own.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    csv.DictWriter(buf, fieldnames=RUNS_COLUMNS).writerow(row)
    with FileLock(str(lock_path(path)), timeout=LOCK_TIMEOUT_S):
        _upgrade(path)
        new = not path.exists() or path.stat().st_size == 0
        if unless_run_dir_present and not new:
            if any(r.get("run_dir") == row["run_dir"] for r in read_rows(path).rows):
                return False
        size = 0 if new else path.stat().st_size
        mend = "" if new or not _unterminated(path) else "\r\n"
        if mend:
            log.warning(f"{path} ended mid-row (cut short by a crash?): ended that line before appending")
        try:
            with path.open("a", newline="", encoding="utf-8") as f:
                f.write(mend + (",".join(RUNS_COLUMNS) + "\r\n" if new else "") + buf.getvalue())
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
