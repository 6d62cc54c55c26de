"""The leaderboard a sweep writes at its end: its tuned table, from the runs CSV, of the runs of that
sweep and of the runs it resumed from an earlier one, to ``<sweep_dir>/leaderboard.md`` (compact, with
its notes) and ``leaderboard.csv`` (every column); the sweep's Hydra callback
(``bench.results.sweep_callback``) calls it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.analysis.configurations import tuned_board
from bench.analysis.render import render
from bench.analysis.runs_table import load_runs
from bench.results.run_folder import RunFolder


def sweep_runs(sweep_dir: str | Path, csv_path: str | Path) -> pd.DataFrame:
    """The rows of the runs CSV that belong to the sweep: its runs, and those it resumed (by config
    hash); an error naming the CSV's sweeps when there are none."""
    sweep_dir = Path(sweep_dir)
    runs = load_runs(csv_path)
    resumed = {
        run.resumed()["config_hash"]
        for run in RunFolder.under(sweep_dir, resumed=True)
        if run.resumed_path.is_file()
    }
    mine = runs[runs["sweep"].map(lambda s: _same_path(s, sweep_dir)) | runs["config_hash"].isin(resumed)]
    if mine.empty:
        sweeps = sorted({s for s in runs["sweep"] if s})
        raise ValueError(
            f"no runs of sweep {sweep_dir} in {csv_path}; sweeps there: {', '.join(sweeps) or '(none)'}"
        )
    return mine


def write_sweep_leaderboard(sweep_dir: str | Path, mine: pd.DataFrame) -> Path:
    """Write the tuned leaderboard of the sweep's runs (``sweep_runs``) to ``<sweep_dir>/leaderboard.md``
    (compact) and ``.csv`` (every column); returns the md."""
    sweep_dir = Path(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / "leaderboard.csv").write_text(render(tuned_board(mine, full=True, source=sweep_dir), "csv"))
    md = sweep_dir / "leaderboard.md"
    md.write_text(
        f"# Leaderboard of sweep {sweep_dir.name}\n\n" + render(tuned_board(mine, source=sweep_dir), "md")
    )
    return md


def _same_path(value: str, path: Path) -> bool:
    return bool(value) and (value == str(path) or Path(value).resolve() == path.resolve())
