"""The runs CSV survives damage: a row cut short inside a quoted field, a stray line with an unclosed
quote, a row with an extra or a missing field, a line over the parser's field limit are each skipped and
named (line and reason), every other row is kept, the leaderboard and the report still work; and a row
appended after a crash that left the file mid-row stands on a line of its own."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
from helpers.notices import notices

from bench.analysis import leaderboard, report, runs_table
from bench.results.columns import RUNS_COLUMNS
from bench.results.runs_csv import RunsCsv, append_row, read_rows, run_row

SKIPPED = "skipped a malformed run row"


def lines_of(path: Path) -> list[str]:
    """The file's lines as written (``\\r\\n`` kept): the header first, then one line per row."""
    with path.open(newline="") as f:
        return f.readlines()


def write_lines(path: Path, lines: list[str]) -> None:
    with path.open("w", newline="") as f:
        f.write("".join(lines))


def cut_in_quoted_field(line: str) -> str:
    """A row cut short by a crash inside its first quoted field (a JSON cell), with no line break."""
    return line[: line.index('"') + 4]


# name -> (the damage done to a row's line, what the notice says)
DAMAGE = {
    "cut short in a quoted field": (
        lambda line: cut_in_quoted_field(line) + "\r\n",
        "quoted field is not closed",
    ),
    "a stray unclosed quote": (lambda line: '"half a row, never closed\r\n', "quoted field is not closed"),
    "an extra field": (
        lambda line: line.replace("\r\n", ",extra\r\n"),
        f"{len(RUNS_COLUMNS) + 1} fields where the header has {len(RUNS_COLUMNS)}",
    ),
    "a missing field": (
        lambda line: line[: line.rindex(",")] + "\r\n",
        f"{len(RUNS_COLUMNS) - 1} of the header's {len(RUNS_COLUMNS)} fields",
    ),
    "a line over the field limit": (
        lambda line: line.replace("\r\n", "") + "x" * 200_000 + "\r\n",
        "a line of 200,",
    ),
}
DAMAGED_ROW = 3  # the data row replaced (file line DAMAGED_ROW + 2)


def damaged(results: Path, kind: str) -> tuple[Path, Path]:
    """The fixture's runs.csv with data row DAMAGED_ROW damaged, and a clean copy without that row."""
    lines = lines_of(results / "runs.csv")
    clean = results / "clean.csv"
    write_lines(clean, lines[: DAMAGED_ROW + 1] + lines[DAMAGED_ROW + 2 :])
    damage, _ = DAMAGE[kind]
    lines[DAMAGED_ROW + 1] = damage(lines[DAMAGED_ROW + 1])
    write_lines(results / "runs.csv", lines)
    return results / "runs.csv", clean


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_a_malformed_line_is_skipped_and_named_and_the_other_rows_kept(results, caplog, kind):
    path, clean = damaged(results, kind)
    read = read_rows(path)
    assert read.columns == RUNS_COLUMNS
    assert [n for n, _ in read.skipped] == [DAMAGED_ROW + 2] and DAMAGE[kind][1] in read.skipped[0][1]
    err = notices(caplog)
    assert f"{SKIPPED} (line {DAMAGED_ROW + 2} of {path}): " in err and DAMAGE[kind][1] in err
    assert f"peft-bench rebuild_runs --results {results}" in err
    with clean.open(newline="") as f:
        assert read.rows == list(csv.DictReader(f))  # every following row kept, none swallowed
    pd.testing.assert_frame_equal(runs_table.load_runs(path), runs_table.load_runs(clean))


def test_an_unclosed_quote_does_not_swallow_the_rows_after_it(results):
    path = results / "runs.csv"
    with path.open(newline="") as f:
        expected = [r["run_dir"] for r in csv.DictReader(f)]
    lines = lines_of(path)
    lines.insert(2, '"never closed,\r\n')  # line 3
    lines.insert(4, 'oops,"x\r\n')  # line 5
    write_lines(path, lines)
    read = read_rows(path)
    unclosed = "a quoted field is not closed (cut short by a crash?)"
    assert read.skipped == [(3, unclosed), (5, unclosed)]
    assert [r["run_dir"] for r in read.rows] == expected


def test_a_quoted_field_may_span_lines_but_an_open_quote_costs_only_its_line(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(
        b'a,b,c\r\n1,"two\r\nlines",3\r\n"open,4\r\n5,6,7\r\n\r\n8,9\r\n10,11,"x\r\n12,13,14\r\n'
    )
    read = read_rows(path)
    assert read.rows == [
        {"a": "1", "b": "two\r\nlines", "c": "3"},
        {"a": "5", "b": "6", "c": "7"},
        {"a": "12", "b": "13", "c": "14"},
    ]
    unclosed = "a quoted field is not closed (cut short by a crash?)"
    assert read.skipped == [
        (4, unclosed),
        (7, "2 of the header's 3 fields (cut short by a crash?)"),
        (8, unclosed),
    ]


def test_leaderboard_and_report_work_on_a_runs_csv_with_every_damage(results, capsys, caplog):
    path = results / "runs.csv"
    lines = lines_of(path)
    rows = [1, 4, 7, 10, 13]  # data rows of completed runs, one per kind of damage
    for row, (damage, _) in zip(rows, DAMAGE.values(), strict=True):
        lines[row + 1] = damage(lines[row + 1])
    write_lines(path, lines)
    assert leaderboard.main(["--results", str(results)]) == 0
    assert "| rank |" in capsys.readouterr().out
    named = [m for m in notices(caplog).splitlines() if SKIPPED in m]
    assert len(named) == len(DAMAGE)
    for message, row, (_, why) in zip(named, rows, DAMAGE.values(), strict=True):
        assert f"(line {row + 2} of {path}): " in message and why in message
    assert report.main(["--results", str(results)]) == 0
    assert "<html" in (results / "report.html").read_text()


def test_a_row_appended_after_a_crash_mid_row_stands_on_its_own_line(results, caplog):
    path = results / "runs.csv"
    lines = lines_of(path)
    lines[-1] = cut_in_quoted_field(lines[-1])  # the crash: no line break at the end
    write_lines(path, lines)
    new = {"status": "completed", "variant": "lora", "task": "sst2", "model": "m", "run_dir": "/r/new"}
    RunsCsv(path).finish(new)
    assert f"{path} ended mid-row" in notices(caplog)
    read = read_rows(path)
    assert [n for n, _ in read.skipped] == [len(lines)]  # the cut row, named
    assert read.rows[-1] == {k: str(v) for k, v in run_row(new).items()}  # intact, on a line of its own
    assert len(read.rows) == len(lines) - 1  # the rows before the cut one, and the new one
    assert append_row(path, run_row(new), unless_run_dir_present=True) is False  # found: no second row


def test_a_file_that_ends_in_a_line_break_gets_none_added(results, caplog):
    path = results / "runs.csv"
    before = path.read_bytes()
    RunsCsv(path).finish({"status": "completed", "variant": "lora", "run_dir": "/r/new"})
    after = path.read_bytes()
    assert after.startswith(before) and after[len(before) :].count(b"\r\n") == 1
    assert "ended mid-row" not in notices(caplog)
