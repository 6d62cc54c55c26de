"""bench.benchmarks.resume_speed on 20 run folders: its rows, the ratios computed from them, and that it
cleans up.
No timed assertions (the figure for 20,000 runs is the benchmark's, in the README)."""

from __future__ import annotations

import json

import pytest

from bench.benchmarks import resume_speed
from bench.results.index import completed_run

ROWS = [
    ("hit", "scan"),
    ("hit", "index, rebuilt"),
    ("hit", "index"),
    ("miss", "scan"),
    ("miss", "index, rebuilt"),
    ("miss", "index"),
    ("append", "index (one line)"),
]


def test_it_prints_every_row_with_its_ratio_to_the_scan(tmp_path, capsys):
    assert resume_speed.main(["--runs", "20", "--repeats", "1", "--dir", str(tmp_path)]) == 0
    header, *rows, footer = capsys.readouterr().out.splitlines()
    assert header.split() == ["lookup", "method", "seconds", "scan", "/", "this"]
    cells = [(r[:8].strip(), r[8:26].strip(), float(r[26:36]), r[36:].strip()) for r in rows]
    assert [(lookup, method) for lookup, method, _, _ in cells] == ROWS
    assert all(seconds > 0 for _, _, seconds, _ in cells)
    for scan, *index in (cells[0:3], cells[3:6]):
        assert scan[3] == "1.0"
        for _, _, seconds, ratio in index:  # scan / this, up to the table's rounding
            expected = scan[2] / seconds  # both to 3 significant digits, the ratio to 1 decimal
            assert abs(float(ratio) - expected) <= expected * 0.0101 + 0.0501
    assert cells[6][3] == "-"
    assert footer.startswith("20 run folders, metrics.json of ") and footer.endswith(
        "bytes each; median of 1"
    )
    assert list(tmp_path.iterdir()) == []  # built in a temporary folder, removed


def test_the_scan_it_times_finds_what_the_index_finds(tmp_path):
    template = {"status": "completed", "best": {}}
    folders = resume_speed.build(tmp_path, 3, template)
    for folder in folders:
        cfg_hash = json.loads((folder / "metrics.json").read_text())["config_hash"]
        assert resume_speed.scan(tmp_path, cfg_hash) == folder
        assert completed_run(tmp_path, cfg_hash) == folder
    assert resume_speed.scan(tmp_path, resume_speed.MISS) is None


def test_bad_counts_are_refused(capsys):
    with pytest.raises(SystemExit):
        resume_speed.main(["--runs", "0"])
    assert "--runs=0 is not valid: it must be >= 1" in capsys.readouterr().err
