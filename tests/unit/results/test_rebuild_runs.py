"""The ``rebuild_runs`` command: the runs CSV written again from the run folders, the old file kept aside,
the same rows as the runs wrote, and a second rebuild changing nothing."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.notices import notices

from bench.analysis import leaderboard
from bench.results import rebuild_runs
from bench.results.columns import RUNS_COLUMNS
from bench.results.runs_csv import RunsCsv, read_rows


def rows_of(path: Path) -> tuple[list[str] | None, list[dict[str, str]]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def by_run(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return sorted(rows, key=lambda r: r["run_dir"])


def backups(results: Path) -> list[Path]:
    return sorted(results.glob("runs.csv.bak-*"))


def damage(path: Path) -> bytes:
    """Row 3 cut short inside a quoted field, the next row appended onto it (as a crash and a run did
    before append_row ended the line), and a stray line with an unclosed quote; the damaged bytes."""
    with path.open(newline="") as f:
        lines = f.readlines()
    lines[4] = lines[4][: lines[4].index('"') + 4] + lines[5]
    del lines[5]
    lines.insert(8, '"never closed\r\n')
    with path.open("w", newline="") as f:
        f.write("".join(lines))
    return path.read_bytes()


def test_a_damaged_runs_csv_is_rebuilt_from_the_run_folders(results, capsys):
    _, original = rows_of(results / "runs.csv")
    damaged = damage(results / "runs.csv")
    assert len(read_rows(results / "runs.csv").rows) == len(original) - 2  # two runs lost to the damage
    assert rebuild_runs.main(["--results", str(results)]) == 0
    said = capsys.readouterr().out.strip().splitlines()
    [aside] = backups(results)
    kept = f"the previous file is kept as {aside}"
    assert said == [f"rebuilt {results / 'runs.csv'} from {len(original)} run folders; {kept}"]
    assert aside.read_bytes() == damaged
    columns, rebuilt = rows_of(results / "runs.csv")
    assert columns == RUNS_COLUMNS and by_run(rebuilt) == by_run(original)  # every run back, as written
    times = [r["timestamp"] for r in rebuilt]
    assert times == sorted(times)  # in the order the runs ended
    assert read_rows(results / "runs.csv").skipped == []
    assert leaderboard.main(["--results", str(results)]) == 0


def test_a_second_rebuild_changes_nothing(results, capsys):
    damage(results / "runs.csv")
    rebuild_runs.main(["--results", str(results)])
    first = (results / "runs.csv").read_bytes()
    capsys.readouterr()
    assert rebuild_runs.main(["--results", str(results)]) == 0
    assert capsys.readouterr().out.strip() == (
        f"{results / 'runs.csv'} already holds the rows of {len(rows_of(results / 'runs.csv')[1])} run "
        "folders: left as it is"
    )
    assert (results / "runs.csv").read_bytes() == first and len(backups(results)) == 1


def test_a_run_appended_after_a_rebuild_is_kept_by_the_next(results):
    rebuild_runs.rebuild(results)
    run_dir = results / "runs" / "late"
    run_dir.mkdir()
    metrics = {
        "status": "completed",
        "variant": "lora",
        "task": "sst2",
        "model": "m",
        "run_dir": str(run_dir),
    }
    metrics["timestamp"] = "2030-01-01T00:00:00"
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    RunsCsv(results / "runs.csv").finish(metrics)
    assert rebuild_runs.rebuild(results).endswith("left as it is")  # the folders and the file agree


def test_folders_elsewhere_are_kept_and_rows_without_a_folder_counted(results, capsys, caplog):
    path = results / "runs.csv"
    _, rows = rows_of(path)
    moved, gone, broken = (Path(rows[i]["run_dir"]) for i in (3, 4, 5))
    elsewhere = results.parent / "elsewhere" / moved.name
    shutil.move(moved, elsewhere)
    rows[3]["run_dir"] = str(elsewhere)
    (elsewhere / "metrics.json").write_text(
        json.dumps(json.loads((elsewhere / "metrics.json").read_text()) | {"run_dir": str(elsewhere)})
    )
    shutil.rmtree(gone)
    (broken / "metrics.json").write_text('{"status": "compl')
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=RUNS_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    assert rebuild_runs.main(["--results", str(results)]) == 0
    assert capsys.readouterr().out.strip().endswith("(1 row of it named no run folder)")  # the one gone
    assert f"left out {broken / 'metrics.json'}: it does not parse" in notices(caplog)
    _, rebuilt = rows_of(path)
    assert by_run(rebuilt) == by_run([r for i, r in enumerate(rows) if i not in (4, 5)])


def test_hidden_folders_are_not_run_folders(results):
    hidden = results / ".trash" / "old-run"
    hidden.mkdir(parents=True)
    (hidden / "metrics.json").write_text(json.dumps({"status": "completed", "run_dir": str(hidden)}))
    rebuild_runs.rebuild(results)
    assert str(hidden) not in {r["run_dir"] for r in rows_of(results / "runs.csv")[1]}


def test_a_results_folder_without_runs_or_csv_is_left_alone(tmp_path):
    assert (
        rebuild_runs.rebuild(tmp_path)
        == f"no run folders under {tmp_path} and no {tmp_path / 'runs.csv'}: nothing to rebuild"
    )
    assert not (tmp_path / "runs.csv").exists()


def test_a_missing_results_folder_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        rebuild_runs.main(["--results", str(tmp_path / "nope")])
    assert e.value.code == 2 and f"--results {tmp_path / 'nope'}: no such folder" in capsys.readouterr().err


def test_the_command_is_peft_bench_rebuild_runs(results):
    done = subprocess.run(
        [sys.executable, "-m", "bench", "rebuild_runs", "--results", str(results)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.startswith(
        f"rebuilt {results / 'runs.csv'} from 20 run folders"
    )
