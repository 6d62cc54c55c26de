"""Hydra callback: when a sweep ends, write and print its aggregated leaderboard, and with W&B on log it
in the experiment's sweep-end run (``bench.results.wandb_leaderboard``);
then, if runs of this sweep failed (a config error too: no run started), ran out of memory or were
interrupted, print one line naming their tracebacks and exit 1 (the sweep itself went on past each of
them). A sweep stopped by Ctrl-C never ends that way: ``interrupted_summary`` gives its lines instead
(``bench.run.train`` prints them).

Wired in through ``conf/hydra/callbacks/leaderboard.yaml``. It reads the sweep folder from
``hydra.sweep.dir``, the runs CSV from ``paths.runs_csv``, the experiment from ``experiment_name`` and the
W&B settings from ``logger.wandb``; the sweep's W&B group is ``sweep_group(hydra.sweep.dir)``, the same
group its training runs use.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from bench.analysis.sweep_leaderboard import sweep_runs, write_sweep_leaderboard
from bench.log import log
from bench.plural import plural
from bench.results.failed_runs import failed_since, unstarted_since
from bench.results.run_folder import ERROR

# The sweep this process runs, from its start to its end: what the lines after a Ctrl-C name.
_running: dict[str, Any] = {}


def sweep_group(sweep_dir: str | Path) -> str:
    """The W&B group of a sweep: the name of its folder."""
    return Path(sweep_dir).name


class LeaderboardCallback(Callback):
    def __init__(self) -> None:
        # Hydra builds its callbacks as the sweep starts. Seconds, as metrics.json's started_at has them.
        self.started = dt.datetime.now().replace(microsecond=0)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _running.update(
            sweep_dir=Path(config.hydra.sweep.dir), started=self.started, results=Path(config.paths.results)
        )

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        _running.clear()
        sweep_dir = Path(config.hydra.sweep.dir)
        show_leaderboard(sweep_dir, config)
        failed = sweep_failures(Path(config.paths.results), sweep_dir, self.started)
        if failed:
            sys.exit(failure_summary(failed))


def sweep_failures(results: Path, sweep_dir: Path, since: dt.datetime) -> dict[Path, str]:
    """The sweep's runs that did not complete since ``since``: their folders (``failed_since``) and the
    error logs of those that never started (``unstarted_since``), each with its status."""
    return failed_since(sweep_dir, since) | unstarted_since(results, sweep_dir, since)


def failure_summary(failed: dict[Path, str]) -> str:
    """One line: how many runs of the sweep did not complete, by status, and where each one's traceback
    is (a run folder's error.txt, the error log of a run that never started), else its folder."""
    counts = Counter(failed.values())
    by_status = ", ".join(f"{status}: {n}" for status, n in sorted(counts.items()))
    shown = " ".join(str(p / ERROR if (p / ERROR).is_file() else p) for p in failed)
    return (
        f"sweep: {plural(len(failed), 'run')} did not complete ({by_status}), see: {shown} (python -m bench "
        "failed_runs lists the run folders, --prune deletes them)"
    )


def interrupted_summary(command: str) -> list[str]:
    """After Ctrl-C stopped a sweep of this process: the summary of its runs that did not complete, then
    one line naming the interrupted runs and the command that resumes the sweep; [] when no sweep runs."""
    if not _running:
        return []
    sweep_dir = _running["sweep_dir"]
    failed = sweep_failures(_running["results"], sweep_dir, _running["started"])
    stopped = " ".join(str(p) for p, status in failed.items() if status == "interrupted")
    return [
        *([failure_summary(failed)] if failed else []),
        f"interrupted: sweep {sweep_dir}, at {f'run {stopped}' if stopped else 'no run'}; the same command "
        f"resumes it (its completed runs are skipped): {command}",
    ]


def show_leaderboard(sweep_dir: Path, config: DictConfig) -> None:
    csv_path = Path(config.paths.runs_csv)
    try:
        runs = sweep_runs(sweep_dir, csv_path)
        md = write_sweep_leaderboard(sweep_dir, runs)
    except (FileNotFoundError, ValueError) as e:  # e.g. every run was killed before its CSV row
        log.warning(f"no sweep leaderboard written: {e}")
        return
    print(md.read_text())
    print(f"sweep leaderboard: {md} (and {md.with_suffix('.csv').name})")
    wandb_cfg = (config.get("logger") or {}).get("wandb")
    if wandb_cfg is not None:
        experiment = config.get("experiment_name") or sweep_group(sweep_dir)
        log_to_wandb(runs, sweep_dir, csv_path, experiment, wandb_cfg)


def log_to_wandb(
    runs: pd.DataFrame, sweep_dir: Path, csv_path: Path, experiment: str, wandb_cfg: DictConfig
) -> None:
    """Log the sweep's leaderboard (``runs``: its rows of the runs CSV) in the experiment's sweep-end W&B
    run (``bench.results.wandb_leaderboard``); a failure only warns."""
    try:
        from bench.results.wandb_leaderboard import log_leaderboard  # imported only with W&B on

        log_leaderboard(runs, sweep_dir, csv_path, experiment, wandb_cfg)
    except Exception as e:  # noqa: BLE001 - W&B must never fail a finished sweep
        log.warning(f"W&B logging of the sweep leaderboard failed: {type(e).__name__}: {e}")
