"""The run folder: results flow one way, runner -> run folder -> sinks (``bench.results.sinks``).

A run folder holds the composed config (``config.yaml``), ``metrics.json``, ``history.jsonl``,
``predictions.csv`` and ``adapter/`` (peft's format); a run skipped by resume holds ``resumed.json``.
Resume finds earlier results through the results index (``bench.results.index.completed_run``).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from bench.config.hash_policy import unhashed
from bench.inputs.models import ModelConfig
from bench.inputs.tasks import TaskConfig
from bench.run.loop import TrainConfig

RESULTS_ENV = "PEFT_BENCH_RESULTS"  # the results folder, when set (conf/train.yaml reads it too)
# What does not change what a run computes: where it logs, how it reports progress, what it keeps.
HASH_IGNORED = ("logger", "paths", "hydra", "resume", "force", "experiment_name")
# The sections whose schemas mark settings as not hashed, or hashed only when set (bench.config.hash_policy).
SECTION_SCHEMAS = {"train": TrainConfig, "task": TaskConfig, "model": ModelConfig}


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


def config_payload(cfg: dict[str, Any], with_seed: bool = True) -> dict[str, Any]:
    """The resolved config minus HASH_IGNORED and the settings its section schemas leave unhashed (not
    what a run computes), and minus ``seed`` unless ``with_seed``: what ``config_hash``, ``config_key``
    and ``config_settings`` read."""
    out = {k: v for k, v in cfg.items() if k not in HASH_IGNORED and (with_seed or k != "seed")}
    for section, schema in SECTION_SCHEMAS.items():
        if isinstance(out.get(section), dict):
            out[section] = unhashed(out[section], schema)
    return out


def _short_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]


def config_hash(cfg: dict[str, Any]) -> str:
    """A short hash of everything that changes what a run computes (not where it logs): one per run."""
    return _short_hash(config_payload(cfg))


def config_key(cfg: dict[str, Any]) -> str:
    """``config_hash`` without the seed: one per configuration, shared by its seeds (a leaderboard row)."""
    return _short_hash(config_payload(cfg, with_seed=False))


def config_settings(cfg: dict[str, Any]) -> dict[str, Any]:
    """The payload of ``config_key`` flattened to dotted keys (``train.weight_decay``,
    ``model.max_length``, ``task.max_eval_samples``): what two configurations differ in."""
    return flatten(config_payload(cfg, with_seed=False))


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one dict of dotted keys; lists and other values as they are."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


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


def save_adapter(folder: Path, state_dict: dict[str, torch.Tensor], adapter_config: dict | None) -> int:
    """Write peft's adapter files; returns the size in bytes of adapter_model.safetensors."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    save_file(tensors, str(folder / "adapter_model.safetensors"), metadata={"format": "pt"})
    if adapter_config is not None:
        write_json(folder / "adapter_config.json", adapter_config)
    return (folder / "adapter_model.safetensors").stat().st_size
