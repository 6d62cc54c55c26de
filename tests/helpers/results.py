"""A realistic results folder (runs.csv + run folders) for the leaderboard, report and callback tests.

``RUNS`` lists the runs with hand-checked numbers (see the comments); ``write_results`` writes them, as
runs recorded before ``config_key`` and ``settings`` (their rows are grouped by label). ``composed_run``
is a run recorded as the runner records it now (from a composed config); ``write_runs`` writes such runs,
``write_dora_runs`` composed dora runs; ``without`` reads a runs CSV back without some tasks' runs.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd

from bench.results.columns import RUNS_COLUMNS
from bench.results.runs_csv import run_row

LORA = {
    "epochs": 3,
    "batch_size": 16,
    "max_train_samples": None,
    "r": 8,
    "alpha": 8.0,
    "dropout": 0.0,
    "targets": "attention",
    "use_rslora": False,
    "init": "kaiming",
}
FULL = {"epochs": 3, "batch_size": 16, "max_train_samples": None, "targets": "attention"}
COST = {
    "lora": (887_042, 0.7066, 2900.0, 120.0, 400.0, 1.13),
    "full": (124_647_170, 100.0, 5100.0, 100.0, 480.0, 475.5),
}
TOTAL = {"lora": 125_534_212, "full": 124_647_170}
LABEL = {"lora": ["lr", "r"], "full": ["lr"], "vera": ["lr", "r"]}  # lr + each variant's key_hparams

# (task, variant, lr, seed, status, score, other metrics, timestamp, config_hash)
RUNS = [
    # sst2 lora lr 5e-4: seeds 0, 1, 2 -> 90, 92, 94 (mean 92, std 2, median 92). Seed 0 was run three
    # times: an old completed 50, the latest completed 90, then a failed retry: only the 90 counts.
    ("sst2", "lora", 5e-4, 0, "completed", 0.50, {}, "2024-05-01T09:00:00", "h-sst2-lora-5e-4-0"),
    ("sst2", "lora", 5e-4, 0, "completed", 0.90, {}, "2024-05-02T10:00:00", "h-sst2-lora-5e-4-0"),
    ("sst2", "lora", 5e-4, 0, "failed", None, {}, "2024-05-03T10:00:00", "h-sst2-lora-5e-4-0"),
    ("sst2", "lora", 5e-4, 1, "completed", 0.92, {}, "2024-05-02T10:10:00", "h-sst2-lora-5e-4-1"),
    ("sst2", "lora", 5e-4, 2, "completed", 0.94, {}, "2024-05-02T10:20:00", "h-sst2-lora-5e-4-2"),
    ("sst2", "lora", 5e-4, 3, "failed", None, {}, "2024-05-02T10:30:00", "h-sst2-lora-5e-4-3"),
    # sst2 lora lr 1e-3: 91, 95 (mean 93, std 2.8284, median 93) + one diverged.
    ("sst2", "lora", 1e-3, 0, "completed", 0.91, {}, "2024-05-02T11:00:00", "h-sst2-lora-1e-3-0"),
    ("sst2", "lora", 1e-3, 1, "completed", 0.95, {}, "2024-05-02T11:10:00", "h-sst2-lora-1e-3-1"),
    ("sst2", "lora", 1e-3, 2, "diverged", None, {}, "2024-05-02T11:20:00", "h-sst2-lora-1e-3-2"),
    # sst2 full: 93, 94, 96 (mean 94.3333, std 1.527525, median 94).
    ("sst2", "full", 2e-5, 0, "completed", 0.93, {}, "2024-05-02T12:00:00", "h-sst2-full-0"),
    ("sst2", "full", 2e-5, 1, "completed", 0.94, {}, "2024-05-02T12:10:00", "h-sst2-full-1"),
    ("sst2", "full", 2e-5, 2, "completed", 0.96, {}, "2024-05-02T12:20:00", "h-sst2-full-2"),
    # cola: lora 60, 62, 64 (mean 62); full 63, 65 (mean 64).
    ("cola", "lora", 5e-4, 0, "completed", 0.60, {}, "2024-05-03T09:00:00", "h-cola-lora-0"),
    ("cola", "lora", 5e-4, 1, "completed", 0.62, {}, "2024-05-03T09:10:00", "h-cola-lora-1"),
    ("cola", "lora", 5e-4, 2, "completed", 0.64, {}, "2024-05-03T09:20:00", "h-cola-lora-2"),
    ("cola", "full", 2e-5, 0, "completed", 0.63, {}, "2024-05-03T10:00:00", "h-cola-full-0"),
    ("cola", "full", 2e-5, 1, "completed", 0.65, {}, "2024-05-03T10:10:00", "h-cola-full-1"),
    # mrpc lora: accuracy 88, 90 (mean 89), f1 91, 93 (mean 92).
    ("mrpc", "lora", 5e-4, 0, "completed", 0.88, {"f1": 0.91}, "2024-05-04T09:00:00", "h-mrpc-lora-0"),
    ("mrpc", "lora", 5e-4, 1, "completed", 0.90, {"f1": 0.93}, "2024-05-04T09:10:00", "h-mrpc-lora-1"),
    # rte vera: failed before training started (no hparams recorded).
    ("rte", "vera", None, 0, "failed", None, {}, "2024-05-05T09:00:00", "h-rte-vera-0"),
]
MAIN = {"sst2": "accuracy", "cola": "matthews_correlation", "mrpc": "accuracy", "rte": "accuracy"}
SWEEP_TASKS = ("cola",)  # the cola runs belong to one sweep


def history(score: float, seed: int) -> list[dict]:
    """Three evaluations per epoch-ish, climbing to ``score`` at the best (second to last) one."""
    return [
        {"epoch": e, "step": 100 * i, "train_loss": 0.7 - 0.1 * i, "lr": 1e-4, "metric": s}
        for i, (e, s) in enumerate([(1.0, score - 0.10 - 0.01 * seed), (2.0, score), (3.0, score - 0.01)], 1)
    ]


def write_results(root: Path, missing_history: tuple[str, ...] = ("lora-mrpc-s1",)) -> Path:
    """A results folder with run folders and ``runs.csv`` for RUNS; returns the CSV path."""
    sweep = root / "sweeps" / "2024-05-03_09-00-00_cola"
    rows = []
    for i, (task, variant, lr, seed, status, score, others, ts, h) in enumerate(RUNS):
        name = f"{variant}-{task}-s{seed}"
        in_sweep = task in SWEEP_TASKS
        run_dir = (sweep / f"{i}_{name}") if in_sweep else (root / "runs" / f"{ts[:10]}_{i}_{name}")
        run_dir.mkdir(parents=True)
        done = status == "completed"
        main = MAIN[task]
        best = {main: score, **others} if done else {}
        hparams = {"lr": lr, **(LORA if variant == "lora" else FULL)} if lr else {}
        params, pct, mem, secs, sps, mb = COST.get(variant, (None,) * 6) if done else (None,) * 6
        metrics = {
            "status": status,
            "error": "" if done else "RuntimeError: loss is nan",
            "run_name": name,
            "variant": variant,
            "task": task,
            "model": "roberta_base",
            "seed": seed,
            "main_metric": main,
            "best_epoch": 2.0 if done else None,
            "best": best,
            "final": best,
            "trainable_params": params,
            "total_params": TOTAL.get(variant),
            "pct_trainable": pct,
            "peak_memory_mb": mem,
            "train_time_s": secs,
            "train_samples_per_s": sps,
            "adapter_mb": mb,
            "hparams": hparams,
            "label_hparams": LABEL[variant],
            "config_hash": h,
            "git_commit": "abc123",
            "sweep": str(sweep) if in_sweep else "",
            "run_dir": str(run_dir),
            "timestamp": ts,
            "variant_summary": {},
        }
        (run_dir / "metrics.json").write_text(json.dumps(metrics))
        if done and name not in missing_history:
            lines = [
                {**{k: v for k, v in e.items() if k != "metric"}, main: e["metric"]}
                for e in history(score, seed)
            ]
            (run_dir / "history.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
        rows.append(run_row(metrics))  # what RunsCsv writes when the run ends
    path = root / "runs.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=RUNS_COLUMNS)
        w.writeheader()
        w.writerows(rows)
    return path


def composed_run(
    compose, root: Path, overrides: list[str], score: float | None, status: str = "completed"
) -> dict:
    """The metrics.json of a run of the config composed from ``overrides`` (the runner's first metrics: its
    config_hash, config_key and settings), ended with ``score`` as its main metric; its folder is made."""
    from bench.run.phases import first_metrics  # torch and the variants: only for the tests that compose runs
    from bench.run.spec import RunSpec

    cfg = compose([f"paths.results={root}", *overrides])
    metrics = first_metrics(RunSpec.of(cfg, root / "runs" / "_".join(overrides).replace("/", "-")))
    done = status == "completed"
    best = {metrics["main_metric"]: score} if done else {}
    metrics.update(status=status, best=best, final=best, best_epoch=1.0 if done else None)
    metrics["timestamp"] = "2024-06-01T09:00:00"
    Path(metrics["run_dir"]).mkdir(parents=True)
    (Path(metrics["run_dir"]) / "metrics.json").write_text(json.dumps(metrics))
    return metrics


def write_runs(root: Path, runs: list[dict]) -> Path:
    """``<root>/runs.csv`` with one row per metrics.json of ``runs`` (as RunsCsv writes them)."""
    path = root / "runs.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=RUNS_COLUMNS)
        w.writeheader()
        w.writerows(run_row(m) for m in runs)
    return path


DORA = ["variant=dora", "task=rt_polarity", "model=minilm"]


def write_dora_runs(compose, root: Path, runs: list[tuple[list[str], int, float]]) -> Path:
    """runs.csv of dora runs: (overrides, seed, score) each, recorded as the runner records them."""
    return write_runs(
        root,
        [composed_run(compose, root, [*DORA, *extra, f"seed={seed}"], score) for extra, seed, score in runs],
    )


def without(csv_path: Path, *tasks: str) -> pd.DataFrame:
    """The runs CSV read as text, without the runs of ``tasks``."""
    df = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    return df[~df["task"].isin(tasks)]
