"""The run folder and the CSV leaderboard: results flow one way, runner -> run folder -> sinks.

A run folder holds the composed config (``config.yaml``), ``metrics.json``, ``history.jsonl``,
``predictions.csv`` and ``adapter/`` (peft's format). ``is_complete`` is the one function that reads
earlier results to decide what a run does (resume).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch
from filelock import FileLock
from safetensors.torch import save_file

from bench.results_columns import LEADERBOARD_COLUMNS

HASH_IGNORED = ("logger", "paths", "hydra", "resume", "force", "experiment_name")


def config_hash(cfg: dict[str, Any]) -> str:
    """A short hash of everything that changes what a run computes (not where it logs)."""
    payload = {k: v for k, v in cfg.items() if k not in HASH_IGNORED}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]


def git_commit() -> str:
    root = Path(__file__).resolve().parent.parent
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


def is_complete(results_dir: str | Path, cfg_hash: str) -> Path | None:
    """The folder of a completed run with this config hash under ``results_dir``, if there is one."""
    for path in sorted(Path(results_dir).glob("**/metrics.json")):
        try:
            m = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if m.get("config_hash") == cfg_hash and m.get("status") == "completed":
            return path.parent
    return None


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
    """One row per evaluated example: split, idx, label, prediction, logit_0..logit_{k-1}."""
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
                    [split, int(idx[i]), labels[i].item(), preds[i].item(), *(f"{x:.6g}" for x in logits[i])]
                )


def save_adapter(folder: Path, state_dict: dict[str, torch.Tensor], adapter_config: dict | None) -> int:
    """Write peft's adapter files; returns the size in bytes of adapter_model.safetensors."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    save_file(tensors, str(folder / "adapter_model.safetensors"), metadata={"format": "pt"})
    if adapter_config is not None:
        write_json(folder / "adapter_config.json", adapter_config)
    return (folder / "adapter_model.safetensors").stat().st_size


def leaderboard_row(metrics: dict[str, Any]) -> dict[str, Any]:
    """Flatten a run's metrics.json into one leaderboard row (JSON for the nested parts)."""
    main = metrics.get("main_metric")
    row = {c: metrics.get(c, "") for c in LEADERBOARD_COLUMNS}
    row["score"] = metrics.get("best", {}).get(main, "")
    row["final_score"] = metrics.get("final", {}).get(main, "")
    row["metrics"] = json.dumps(metrics.get("best", {}), sort_keys=True)
    row["final_metrics"] = json.dumps(metrics.get("final", {}), sort_keys=True)
    row["hparams"] = json.dumps(metrics.get("hparams", {}), sort_keys=True, default=str)
    row["lr"] = metrics.get("hparams", {}).get("lr", "")
    row["error"] = " ".join(str(metrics.get("error") or "").split())[:500]
    return {k: "" if v is None else v for k, v in row.items()}


class CsvLeaderboard:
    """Appends one row per run to a CSV file, under a file lock (parallel writers are safe).

    The row is formatted in memory and written with a single write while the lock is held, so a crash
    never leaves half a row, and the header is written only by the writer that creates the file.
    """

    def __init__(self, path: str):
        self.path = Path(path)

    def start(self, run: dict[str, Any]) -> None:
        """Nothing to stream: the CSV gets one row when the run ends."""

    def log(self, values: dict[str, float], step: int) -> None:
        """Nothing to stream: the CSV gets one row when the run ends."""

    def finish(self, metrics: dict[str, Any]) -> None:
        append_row(self.path, leaderboard_row(metrics))

    def recover(self, metrics: dict[str, Any]) -> None:
        """Resume: add an earlier run's row if the CSV lacks it (killed between metrics.json and its row)."""
        append_row(self.path, leaderboard_row(metrics), unless_run_dir_present=True)


def append_row(path: Path, row: dict[str, Any], unless_run_dir_present: bool = False) -> bool:
    """Append one row under the file lock; returns False when `unless_run_dir_present` found its run_dir."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    csv.DictWriter(buf, fieldnames=LEADERBOARD_COLUMNS).writerow(row)
    with FileLock(str(path) + ".lock", timeout=120):
        new = not path.exists() or path.stat().st_size == 0
        if unless_run_dir_present and not new:
            with path.open(newline="") as f:
                if any(r.get("run_dir") == row["run_dir"] for r in csv.DictReader(f)):
                    return False
        with path.open("a", newline="") as f:
            if new:
                f.write(",".join(LEADERBOARD_COLUMNS) + "\r\n")
            f.write(buf.getvalue())
            f.flush()
    return True
