"""The run folder: results flow one way, runner -> run folder -> sinks (``bench.results.sinks``).

A run folder holds the composed config (``config.yaml``), ``metrics.json``, ``history.jsonl``,
``predictions.csv`` and ``adapter/`` (peft's format, ``bench.results.adapter_files``); a run skipped by
resume holds ``resumed.json``.
Resume finds earlier results through the results index (``bench.results.index.completed_run``).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

RESULTS_ENV = "PEFT_BENCH_RESULTS"  # the results folder, when set (conf/train.yaml reads it too)


def default_results() -> str:
    """The results folder: ``$PEFT_BENCH_RESULTS``, else ``results``."""
    return os.environ.get(RESULTS_ENV, "results")


def recorded_path(recorded: str | Path, near: Path) -> Path:
    """A path as a run recorded it: as is when it exists, else relative to ``near`` or a folder above it.

    Run folders are recorded relative to where training ran (``results/runs/...``); reading them from
    elsewhere finds them from the CSV's or the sweep's folder.
    """
    candidates = [Path(recorded)] + [base / recorded for base in (near, *near.parents)]
    return next((p for p in candidates if p.exists()), candidates[0])


def git_commit() -> str:
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = out.stdout.strip() or "unknown"
    return commit + ("-dirty" if dirty.stdout.strip() else "")


def write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")
    tmp.replace(path)


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_history(path: Path, history: list[dict]) -> None:
    path.write_text("".join(json.dumps(row, default=_json_default) + "\n" for row in history))


def write_predictions(path: Path, outputs: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
    """One row per evaluated example: split, idx, label, prediction, logit_0..logit_{k-1}.

    ``idx`` is the example's index in its source split; rows are in idx order per split. Logits are
    written with 9 significant digits, so float32 values read back exactly.
    """
    with path.open("w", newline="") as f:
        w = None
        for split, (logits, labels, idx) in outputs.items():
            logits = logits.reshape(len(labels), -1)
            regression = logits.shape[1] == 1
            preds = logits[:, 0] if regression else logits.argmax(-1)
            if w is None:
                w = csv.writer(f)
                w.writerow(
                    ["split", "idx", "label", "prediction"] + [f"logit_{j}" for j in range(logits.shape[1])]
                )
            for i in range(len(labels)):
                w.writerow(
                    [split, int(idx[i]), labels[i].item(), preds[i].item(), *(f"{x:.9g}" for x in logits[i])]
                )
