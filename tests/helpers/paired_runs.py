"""Run folders with test predictions, as the runner writes them (metrics.json and test_predictions.csv.gz),
for the tests of the paired bootstrap and the verdict: one task, binary labels, each variant's seeds given
as their predictions (the recorded score is their accuracy)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd

from bench.analysis.run_predictions import TEST_PREDICTIONS


def metrics_json(task: str, variant: str, seed: int, score: float, params: int, run_dir: Path) -> dict:
    """A completed run's metrics.json (the fields the runs table reads)."""
    return {
        "status": "completed",
        "run_name": f"{variant}-{task}-s{seed}",
        "variant": variant,
        "task": task,
        "model": "minilm",
        "seed": seed,
        "main_metric": "accuracy",
        "dev_metric": "accuracy",
        "select_on": "dev",
        "best_epoch": 2.0,
        "best": {"dev/accuracy": score, "test/accuracy": score},
        "final": {"dev/accuracy": score, "test/accuracy": score},
        "chance": {"test/accuracy": 0.5},
        "trainable_params": params,
        "pct_trainable": params / 22_000_000 * 100,
        "peak_memory_mb": 1000.0,
        "train_time_s": 30.0,
        "device": "cpu",
        "code_version": "abcdef0123456789",
        "code_dirty": False,
        "hparams": {"lr": 1e-3, "epochs": 2, "batch_size": 32},
        "label_hparams": ["lr"],
        "config_hash": f"{task}-{variant}-{seed}",
        "run_dir": str(run_dir),
        "timestamp": "2026-12-01T13:00:00",
    }


def write_predictions(folder: Path, labels: np.ndarray, preds: np.ndarray, split: str = "test") -> None:
    """test_predictions.csv.gz: split, idx, label, prediction."""
    table = pd.DataFrame(
        {"split": split, "idx": np.arange(len(labels)), "label": labels, "prediction": preds}
    )
    with gzip.open(folder / TEST_PREDICTIONS, "wt", newline="") as f:
        table.to_csv(f, index=False)


def write_task(
    root: Path, task: str, labels: np.ndarray, variants: dict[str, list[np.ndarray]], params: dict[str, int]
) -> Path:
    """A run folder per (variant, seed) under ``root/task`` with its predictions; returns ``root``."""
    for variant, seeds in variants.items():
        for seed, preds in enumerate(seeds):
            folder = root / task / f"{variant}-s{seed}"
            folder.mkdir(parents=True)
            score = float((preds == labels).mean())
            metrics = metrics_json(task, variant, seed, score, params[variant], folder)
            (folder / "metrics.json").write_text(json.dumps(metrics))
            write_predictions(folder, labels, preds)
    return root


def flip(labels: np.ndarray, wrong: float, seed: int) -> np.ndarray:
    """The labels with a share ``wrong`` of them flipped (binary), at positions drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    out = labels.copy()
    pick = rng.choice(len(labels), int(round(wrong * len(labels))), replace=False)
    out[pick] = 1 - out[pick]
    return out
