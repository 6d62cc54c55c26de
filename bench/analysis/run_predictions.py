"""The test predictions of a task's selected runs, made ready for the paired bootstrap
(``bench.analysis.paired``): found, checked against the score each run recorded, and aligned on one set of
test examples.

A run's ``test_predictions.csv.gz`` (columns split, idx, label, prediction) holds the test split(s) of the
state whose test metrics its metrics.json reports. With several test splits (MNLI's matched and
mismatched), the one whose metric equals the recorded main score is taken. A run is usable only when its
predictions reproduce its recorded score (1e-6): a file that does not is another run's or stale, and the
task falls back to the seed-only test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.analysis.paired import Run
from bench.inputs.metrics import METRICS
from bench.log import log
from bench.results.run_folder import TEST_PREDICTIONS, RunFolder, recorded_path

MATCH = 1e-6  # predictions reproduce the recorded score within this (both computed from the same labels)


def base_metric(main_metric: str) -> str | None:
    """The metric of METRICS that a main metric names, without a test split's suffix (accuracy_m:
    accuracy); None when there is none."""
    names = [m for m in METRICS if main_metric == m or main_metric.startswith(f"{m}_")]
    return max(names, key=len) if names else None


def locate(run_dir: str, source: Path, holding: str = TEST_PREDICTIONS) -> Path | None:
    """A run's folder: as recorded (or relative to ``source``), else by its last one or two path parts
    under ``source`` (a results folder cloned elsewhere); None when no candidate holds ``holding``."""
    parts = Path(str(run_dir)).parts
    base = source if source.is_dir() else source.parent
    candidates = [recorded_path(run_dir, base)] + [base.joinpath(*parts[-k:]) for k in (2, 1) if parts]
    return next((c for c in candidates if (c / holding).is_file()), None)


def run_of(folder: Path, metric: str, score: float) -> tuple[np.ndarray, Run] | None:
    """(idx, (predictions, labels)) of the split whose metric reproduces ``score``; None when none does."""
    table = RunFolder(folder).test_predictions()
    for _, split in table.groupby("split", sort=True):
        split = split.sort_values("idx")
        preds, labels = split["prediction"].to_numpy(), split["label"].to_numpy()
        if abs(METRICS[metric](preds, labels) - score) <= MATCH:
            return split["idx"].to_numpy(), (preds, labels)
    return None


def task_runs(rows: pd.DataFrame, source: Path) -> tuple[str, dict[object, list[Run]]] | None:
    """The metric and, per row (its index label), its runs' predictions on the task's shared test
    examples; None (and a notice naming why) when some run has none, does not match its score, or the
    runs cover different examples."""
    metric = base_metric(str(rows["main_metric"].iloc[0]))
    if metric is None or "run_dirs" not in rows:
        return None
    task, methods, shared = rows["task"].iloc[0], {}, None
    for i, row in rows.iterrows():
        methods[i] = []
        for run_dir, score in zip(row["run_dirs"], row["scores_x100"], strict=True):
            folder = locate(run_dir, source)
            found = None if folder is None else run_of(folder, metric, score / 100)
            if found is None:  # none kept (an older run) is expected; a file that misses is a fault
                notice = log.debug if folder is None else log.warning
                why = "no test predictions" if folder is None else "test predictions that miss its score"
                notice("%s: %s has %s; its ties use Welch's t-test over seeds", task, run_dir, why)
                return None
            idx, run = found
            if shared is None:
                shared = idx
            elif not np.array_equal(idx, shared):
                log.warning("%s: the runs' test examples differ; ties by Welch's t-test over seeds", task)
                return None
            methods[i].append(run)
    return metric, methods
