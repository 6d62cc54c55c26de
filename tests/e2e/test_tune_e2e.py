"""``peft-bench tune`` end to end on the tiny model: the stages run as multiruns of train, the command run
again runs nothing, and the sweep folder's leaderboard selects what the stages selected."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from helpers.runs import ROOT, TINY_RUN, bench_env

from bench.analysis import runs_table
from bench.analysis.configurations import tuned_board

# 3 lrs on seed 0, the best on seed 1 too: 4 runs in 2 stages.
STAGED = [
    "experiment=compare", *TINY_RUN, "variant=lora", "train.lr_scale=1,4,16", "seed=0,1",
    "tune.top_k=1", "tune.top_seeds=2", "tune.edge_cap=0",
]  # fmt: skip


def tune(results, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "bench", "tune", *STAGED, *extra]
    proc = subprocess.run(cmd, cwd=ROOT, env=bench_env(results), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_tune_runs_the_stages_then_nothing_and_the_leaderboard_agrees(tmp_path):
    first = tune(tmp_path).stdout
    assert "stage 1, every point on its first seeds: 3 runs in 1 cell" in first
    assert "stage 2, the best points on more seeds: 1 run in 1 cell" in first
    sweep = tmp_path / "compare"
    assert len(list(sweep.glob("rt_polarity/*/metrics.json"))) == 4

    again = tune(tmp_path).stdout
    assert again.startswith(f"nothing to run: every stage of 1 cell is complete (4 runs in {sweep})")
    chosen = float(re.search(r"variant=lora: train\.lr_scale=([\d.]+) \(seeds per point", again).group(1))

    row = tuned_board(runs_table.load(sweep), full=True).iloc[0]
    assert (row["n"], row["grid"], row["grid_runs"]) == (2, 3, 4)
    assert sorted(row["grid_seeds"].split("/")) == ["1", "1", "2"]
    runs = runs_table.load(sweep)
    selected = runs[runs["lr"] == row["lr"]]["settings"].iloc[0]
    assert selected["train.lr_scale"] == chosen
