"""What the end-to-end tests share: the repository root (their subprocesses' working directory), the
tiny BERT's trainable-parameter counts, an in-process tiny run, a subprocess's environment, and reading
back the CSV files a run writes."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from bench.run import runner

ROOT = Path(__file__).resolve().parents[2]  # tests/helpers/runs.py -> the repository root
# What a copy of the working tree leaves out: git, environments, caches, outputs (and results/ at the top).
COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*.egg-info", ".*_cache", "build", "dist", "wandb",
    "outputs", "multirun",
)  # fmt: skip


def copy_repo(dest: Path) -> Path:
    """A copy of this working tree at ``dest``, its links kept as links (bench/conf -> ../conf)."""

    def ignore(folder: str, names: list[str]) -> set[str]:
        top = {"results"} & set(names) if Path(folder) == ROOT else set()
        return set(COPY_IGNORE(folder, names)) | top

    return Path(shutil.copytree(ROOT, dest, ignore=ignore, symlinks=True))


# tiny BERT (2 layers, hidden 32): LoRA-family r on query and value of both layers, plus the 32->2 head
HEAD_PARAMS = 32 * 2 + 2


def lora_params(r: int) -> int:
    """Trainable parameters of LoRA rank ``r`` on the tiny BERT's attention (query, value) plus its head."""
    return 2 * 2 * (r * 32 + 32 * r) + HEAD_PARAMS


def read_rows(path: Path) -> list[dict]:
    """The rows of a CSV file (runs.csv, predictions.csv) as dicts of strings."""
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


TINY_RUN = [
    "model=tiny",
    "task=rt_polarity",
    "task.max_train_samples=32",
    "task.max_eval_samples=32",
    "train.epochs=1",
]


def tiny_run(compose, results: Path, *overrides: str) -> Path:
    """Train the tiny model on 32 rt_polarity sentences (seconds); returns the run folder."""
    cfg = compose([*TINY_RUN, f"paths.results={results}", *overrides])
    run_dir = results / "runs" / "tiny"
    runner.run(cfg, run_dir)
    return run_dir


TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")  # a subprocess never inherits a parent's rank


def bench_env(results: Path, **extra: str) -> dict[str, str]:
    """The environment of a `python -m bench train` subprocess: results in ``results``, no W&B, full
    tracebacks, no torchrun rank of the test process, and ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in TORCHRUN_VARIABLES}
    return env | {
        "PEFT_BENCH_RESULTS": str(results),
        "WANDB_MODE": "disabled",
        "HYDRA_FULL_ERROR": "1",
        **extra,
    }


def kill_when(cmd: list[str], results: Path, ready: Callable[[], bool], poll_s: float = 0.02) -> None:
    """Run ``cmd`` (results in ``results``) and SIGKILL it with every process below it, as a scheduler
    kills a job (torchrun's workers run in sessions of their own), as soon as ``ready()``; asserts it was
    killed, not ended on its own first."""
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=bench_env(results), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None and not ready():
            time.sleep(poll_s)
    finally:
        if proc.poll() is None:
            for child in psutil.Process(proc.pid).children(recursive=True):
                child.kill()
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"{' '.join(cmd[-3:])} ended before it could be killed"
