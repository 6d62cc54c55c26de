"""The runs CSV with parallel writers (joblib / submitit workers): no lost, torn or duplicated rows.

8 processes append 25 rows each at the same moment, through RunsCsv.finish (a run ending) and
RunsCsv.recover (resume restoring a lost row); the file must hold one header and exactly the 200
rows, every field intact, including values with commas, quotes and newlines (CSV-quoted). Then several
processes recover the same lost rows at once: each comes back exactly once (the lock covers the check and
the append). The lock file is hidden: results/ shows only runs.csv.
"""

from __future__ import annotations

import csv
import multiprocessing as mp
from pathlib import Path

import pytest

from bench.results.columns import RUNS_COLUMNS
from bench.results.runs_csv import RunsCsv, run_row

WORKERS, ROWS = 8, 25


def fake_metrics(worker: int, i: int) -> dict:
    """A run's metrics.json with awkward values: separators, quotes and newlines in strings."""
    return {
        "timestamp": f"2026-01-01T00:{worker:02d}:{i:02d}",
        "run_name": f"lora-rt_polarity-s{i}",
        "status": ["completed", "diverged", "failed", "oom"][i % 4],
        "variant": "lora",
        "task": "rt_polarity",
        "model": "tiny",
        "seed": i,
        "main_metric": "accuracy",
        "best": {"accuracy": worker / 8 + i / 1000, "f1": 1 / (i + 3)},
        "final": {"accuracy": 0.5},
        "hparams": {"lr": 5e-4, "targets": "query,value", "note": f'w{worker} "r{i}"'},
        "trainable_params": 1000 + i,
        "total_params": 10**6,
        "pct_trainable": 0.1,
        "config_hash": f"{worker:02d}{i:02d}abcdef12",
        "run_dir": f"/results/sweeps/s/{worker}_{i}, with comma",
        "sweep": "/results/sweeps/s\nsecond line",
        "git_commit": "abc123-dirty",
        "error": f'ValueError: bad "value" in worker {worker},\n row {i}\n' + "x" * (200 * (i % 3)),
    }


def write_rows(path: str, worker: int, start) -> None:
    sink = RunsCsv(path)
    start.wait(timeout=240)  # every writer starts at the same moment
    for i in range(ROWS):
        if worker % 2:
            sink.recover(fake_metrics(worker, i))  # appends: no row has this run_dir yet
        else:
            sink.finish(fake_metrics(worker, i))


def recover_all(path: str, start) -> None:
    sink = RunsCsv(path)
    start.wait(timeout=240)
    for worker in range(WORKERS):
        for i in range(ROWS):
            sink.recover(fake_metrics(worker, i))  # every row is there: nothing appended


def run_all(target, args_per_process: list[tuple]) -> None:
    ctx = mp.get_context("spawn")  # fresh interpreters, like sweep workers
    start = ctx.Barrier(len(args_per_process))  # released when every process has imported and arrived
    procs = [ctx.Process(target=target, args=(*args, start)) for args in args_per_process]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0] * len(procs)


def expected_rows() -> dict[str, dict]:
    rows = {}
    for worker in range(WORKERS):
        for i in range(ROWS):
            row = run_row(fake_metrics(worker, i))
            rows[row["run_dir"]] = {k: str(v) for k, v in row.items()}
    return rows


def read(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == RUNS_COLUMNS
        return list(reader)


@pytest.mark.slow
def test_parallel_writers_lose_tear_or_duplicate_nothing(tmp_path):
    path = tmp_path / "runs.csv"
    run_all(write_rows, [(str(path), w) for w in range(WORKERS)])
    text = path.read_text()
    assert text.count(",".join(RUNS_COLUMNS)) == 1 and text.startswith("timestamp,run_name,")
    rows = read(path)
    expected = expected_rows()
    assert len(rows) == WORKERS * ROWS
    assert len({r["run_dir"] for r in rows}) == WORKERS * ROWS
    for r in rows:
        assert r == expected[r["run_dir"]]
    # each writer's rows stay in its own order (appends are whole rows, in sequence)
    for w in range(WORKERS):
        mine = [r["timestamp"] for r in rows if r["config_hash"].startswith(f"{w:02d}")]
        assert mine == sorted(mine) and len(mine) == ROWS

    # 4 processes recover every row at once (resumed sweeps): all present, so nothing is appended
    run_all(recover_all, [(str(path),) for _ in range(4)])
    assert path.read_text() == text

    # half the rows lost; 4 processes recover every row at once: each missing row comes back exactly once
    with path.open(newline="") as f:
        kept = list(csv.DictReader(f))[: WORKERS * ROWS // 2]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=RUNS_COLUMNS)
        writer.writeheader()
        writer.writerows(kept)
    run_all(recover_all, [(str(path),) for _ in range(4)])
    rows = read(path)
    assert len(rows) == WORKERS * ROWS and {r["run_dir"] for r in rows} == set(expected)
    assert rows[: len(kept)] == kept and all(r == expected[r["run_dir"]] for r in rows)
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == ["runs.csv"]


def test_recover_appends_only_a_missing_row(tmp_path):
    path = tmp_path / "runs.csv"
    sink = RunsCsv(str(path))
    sink.recover(fake_metrics(0, 0))  # no file yet: written with its header
    sink.finish(fake_metrics(0, 1))
    sink.recover(fake_metrics(0, 1))
    sink.recover(fake_metrics(0, 0))
    rows = read(path)
    assert [r["config_hash"] for r in rows] == ["0000abcdef12", "0001abcdef12"]
    sink.recover(fake_metrics(0, 2))
    assert [r["seed"] for r in read(path)] == ["0", "1", "2"]
