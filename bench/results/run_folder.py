"""The run folder: results flow one way, runner -> run folder -> sinks (``bench.results.sinks``).

A run folder holds the composed config (``config.yaml``), ``metrics.json``, ``history.jsonl``,
``predictions.csv`` (the final state's outputs), ``test_predictions.csv.gz`` (the reported state's test
predictions, compact and byte-stable: committed with a comparison's runs) and ``adapter/`` (peft's
format, ``bench.results.adapter_files``); a run skipped by resume holds ``resumed.json``. While a run
runs, it holds the folder's lock (``RunFolder.running``), so a folder left without a metrics.json by a
killed run can be told from one whose run is still going.
Resume finds earlier results through the results index (``bench.results.index.completed_run``).

A run that fails before it starts (a config error the checks catch, a folder that holds another run)
leaves nothing in its run folder: its traceback goes to ``error_log``, under ``<results>/errors/``.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from filelock import FileLock, Timeout
from omegaconf import DictConfig, OmegaConf

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


def follow_umask(path: Path) -> None:
    """Give the file ``path`` the mode a plain ``open`` gives (0666 less the umask): safetensors writes
    through a private temporary file, which leaves 0600, so a teammate sharing the folder could not read
    it."""
    mask = os.umask(0)
    os.umask(mask)
    path.chmod(0o666 & ~mask)


def error_log(results: str | Path, run_dir: str | Path) -> Path:
    """Where the traceback of a run that did not start goes: ``<results>/errors/<its run folder relative
    to results>.txt`` (a folder outside results: its absolute path under ``errors/``)."""
    mirror = errors_of(results, run_dir)
    return mirror.with_name(f"{mirror.name}.txt")


def errors_of(results: str | Path, folder: str | Path) -> Path:
    """The ``errors/`` counterpart of ``folder`` (a run or sweep folder): ``error_log`` writes the
    tracebacks of its runs at or below it."""
    folder = Path(os.path.abspath(folder))
    try:
        relative = folder.relative_to(os.path.abspath(results))
    except ValueError:
        relative = folder.relative_to(folder.anchor)
    return Path(results) / ERRORS / relative


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
            preds = predicted(logits)
            if w is None:
                w = csv.writer(f)
                w.writerow(
                    ["split", "idx", "label", "prediction"] + [f"logit_{j}" for j in range(logits.shape[1])]
                )
            for i in range(len(labels)):
                w.writerow(
                    [split, int(idx[i]), labels[i].item(), preds[i].item(), *(f"{x:.9g}" for x in logits[i])]
                )


def predicted(logits: np.ndarray) -> np.ndarray:
    """The predictions of ``logits`` (one row per example): the argmax class, or for regression (one
    column) the value."""
    return logits[:, 0] if logits.shape[1] == 1 else logits.argmax(-1)


TEST_PREDICTION_COLUMNS = ("split", "idx", "label", "prediction")


def write_test_predictions(path: Path, outputs: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
    """The columns TEST_PREDICTION_COLUMNS, one row per example, rows in idx order per split; a class as
    an int, a regression value as repr. Gzip with mtime 0: the same predictions give the same bytes."""
    text = io.StringIO()
    w = csv.writer(text, lineterminator="\n")
    w.writerow(TEST_PREDICTION_COLUMNS)
    for split, (logits, labels, idx) in outputs.items():
        preds = predicted(logits.reshape(len(labels), -1))
        for i in np.argsort(idx, kind="stable"):
            w.writerow([split, int(idx[i]), labels[i].item(), preds[i].item()])
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(gzip.compress(text.getvalue().encode(), mtime=0))
    tmp.replace(path)


METRICS = "metrics.json"
CONFIG = "config.yaml"
HISTORY = "history.jsonl"
PREDICTIONS = "predictions.csv"
TEST_PREDICTIONS = "test_predictions.csv.gz"
RESUMED = "resumed.json"
ADAPTER = "adapter"
ADAPTER_WEIGHTS = "adapter_model.safetensors"  # in ADAPTER (bench.results.adapter_files)
ERROR = "error.txt"
ERRORS = "errors"  # in the results folder: the tracebacks of runs that did not start (error_log)
LIVE = ".running.lock"  # held by the run running in the folder (RunFolder.running)


@dataclass(frozen=True)
class RunFolder:
    """One run's folder: the one type that reads and writes its files (``metrics.json``, ``config.yaml``,
    ``history.jsonl``, ``predictions.csv``, ``test_predictions.csv.gz``, ``resumed.json``, ``adapter/``,
    ``error.txt``).

    A read raises OSError when the file is missing and ValueError when it does not parse.
    """

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @classmethod
    def under(cls, root: str | Path, resumed: bool = False) -> list[RunFolder]:
        """The run folders at any depth under ``root`` (those holding a metrics.json, or with ``resumed``
        a resumed.json too), in path order."""
        names = (METRICS, RESUMED) if resumed else (METRICS,)
        return [cls(p) for p in sorted({p.parent for name in names for p in Path(root).glob(f"**/{name}")})]

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def history_path(self) -> Path:
        return self.path / HISTORY

    @property
    def predictions_path(self) -> Path:
        return self.path / PREDICTIONS

    @property
    def test_predictions_path(self) -> Path:
        return self.path / TEST_PREDICTIONS

    @property
    def resumed_path(self) -> Path:
        return self.path / RESUMED

    @property
    def adapter_path(self) -> Path:
        """The adapter's folder (peft's format, written by ``bench.results.adapter_files.save_adapter``)."""
        return self.path / ADAPTER

    @property
    def adapter_weights_path(self) -> Path:
        return self.adapter_path / ADAPTER_WEIGHTS

    @property
    def error_path(self) -> Path:
        return self.path / ERROR

    def metrics(self) -> dict[str, Any]:
        return json.loads(self.metrics_path.read_text())

    def status(self) -> str | None:
        """The status in metrics.json; None when it has none, is missing or does not parse."""
        try:
            return self.metrics().get("status")
        except (OSError, ValueError):
            return None

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        write_json(self.metrics_path, metrics)

    def config(self) -> DictConfig:
        """The run's composed config, resolved."""
        return OmegaConf.load(self.config_path)

    def write_config(self, text: str) -> None:
        """``text``: the composed config as YAML (``OmegaConf.to_yaml(cfg, resolve=True)``)."""
        self.config_path.write_text(text, encoding="utf-8")

    def history(self) -> list[dict[str, Any]]:
        """One dict per evaluation: epoch, step, train_loss, lr and the metrics."""
        return [json.loads(line) for line in self.history_path.read_text().splitlines() if line.strip()]

    def write_history(self, history: list[dict]) -> None:
        write_history(self.history_path, history)

    def predictions(self) -> list[dict[str, str]]:
        """The rows of predictions.csv (``write_predictions``), as strings."""
        with self.predictions_path.open(newline="") as f:
            return list(csv.DictReader(f))

    def write_predictions(self, outputs: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        write_predictions(self.predictions_path, outputs)

    def test_predictions(self) -> pd.DataFrame:
        """The reported state's test predictions (``write_test_predictions``): columns split, idx, label,
        prediction."""
        return pd.read_csv(self.test_predictions_path, dtype={"split": str})

    def write_test_predictions(self, outputs: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        write_test_predictions(self.test_predictions_path, outputs)

    def resumed(self) -> dict[str, str]:
        """A run skipped by resume: ``config_hash`` and ``completed_in`` (the run that completed it)."""
        return json.loads(self.resumed_path.read_text())

    def write_resumed(self, config_hash: str, completed_in: Path) -> None:
        write_json(self.resumed_path, {"config_hash": config_hash, "completed_in": str(completed_in)})

    def write_error(self, text: str) -> None:
        self.error_path.write_text(text)

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Hold the folder's lock while a run runs in it (the folder made if need be); the lock file is
        removed when the run ends, however it ends, and a killed run's is left unheld."""
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            with FileLock(str(self.path / LIVE)):
                yield
        finally:
            (self.path / LIVE).unlink(missing_ok=True)

    def is_running(self) -> bool:
        """Whether a run is running in the folder now: its lock is held."""
        if not (self.path / LIVE).exists():
            return False
        try:
            with FileLock(str(self.path / LIVE), timeout=0):
                return False
        except Timeout:
            return True

    def is_leftover(self) -> bool:
        """A killed run's folder: its run started (config.yaml) but never ended (no metrics.json, or one
        without the end's ``timestamp``), and no run holds it now."""
        if not self.config_path.is_file():
            return False
        try:
            ended = "timestamp" in self.metrics()
        except (OSError, ValueError):  # none, or one cut short by the kill
            ended = False
        return not ended and not self.is_running()
