"""Where a sweep's wall time goes: the demo's (or any sweep's) time split into install, startup, model
load, tokenization, training steps and evaluation.

    python -m bench sweep_overhead                       # make demo's sweep: experiment=demo
    python -m bench sweep_overhead experiment=demo variant=lora,dora   # any overrides of bench.run.train

It runs ``python -m bench train -m <overrides>`` once, into a new results folder (so every run trains,
none resumes), timing the whole command from outside, and adds up each run's ``phase_time_s``
(``bench.run.phase_times``). Startup is the wall time outside every run: interpreter, imports, Hydra's
composition and launcher, between runs. Install is the one-off ``make`` install, read from the seconds
the Makefile records in the virtual environment when it installed; it is shown apart from the sweep. The
figure to watch is the sweep's wall time outside training steps (target: ``TARGET_OUTSIDE_STEPS``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.results.run_folder import RESULTS_ENV, RunFolder
from bench.run.phase_times import PHASES

DEFAULT_OVERRIDES = ["experiment=demo"]
TARGET_OUTSIDE_STEPS = 0.15  # the project's speed target for a sweep's time outside training steps
INSTALL_RECORD = Path(sys.prefix) / "install-seconds"  # the Makefile's install writes it into the venv
LABELS = {
    "startup": "startup and between runs",
    "load_data": "load data",
    "load_model": "load model",
    "tokenize": "tokenize",
    "train_steps": "training steps",
    "evaluate": "evaluation",
    "checkpoint": "checkpoints",
    "other": "rest of the runs (checks, outputs)",
}


def run_sweep(overrides: list[str], results: Path) -> float:
    """Wall seconds of ``python -m bench train -m overrides`` writing into ``results``."""
    env = os.environ | {RESULTS_ENV: str(results)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bench", "train", "-m", *overrides], env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"error: the sweep exited with {proc.returncode}; its runs are in {results}")
    return wall


def split(runs: list[dict[str, Any]], wall: float) -> dict[str, float]:
    """Seconds per phase over ``runs`` (their ``phase_time_s``), startup (outside every run) and the
    rest of the runs' time, for a sweep of ``wall`` seconds."""
    times = [m["phase_time_s"] for m in runs]
    total = {phase: sum(t[phase] for t in times) for phase in PHASES}
    in_runs = sum(t["run"] for t in times)
    return {"startup": wall - in_runs, **total, "other": in_runs - sum(total.values())}


def install_seconds(record: Path = INSTALL_RECORD) -> float | None:
    try:
        return float(record.read_text())
    except (OSError, ValueError):
        return None


def report(parts: dict[str, float], wall: float, n_runs: int, install: float | None) -> dict[str, Any]:
    outside = (wall - parts["train_steps"]) / wall
    return {
        "runs": n_runs,
        "wall_s": round(wall, 2),
        "install_s": install,
        "phases_s": {k: round(v, 2) for k, v in parts.items()},
        "outside_training_steps": round(outside, 4),
        "target": TARGET_OUTSIDE_STEPS,
        "met": outside <= TARGET_OUTSIDE_STEPS,
    }


def print_report(r: dict[str, Any]) -> None:
    wall = r["wall_s"]
    install = "not recorded (installed without make)" if r["install_s"] is None else f"{r['install_s']:.0f} s"
    print(f"install (once per machine, not in the sweep): {install}")
    print(f"{'phase':<36}{'seconds':>10}{'share':>9}")
    for key, seconds in r["phases_s"].items():
        print(f"{LABELS[key]:<36}{seconds:>10.1f}{seconds / wall:>9.1%}")
    print(f"{'sweep (' + str(r['runs']) + ' runs)':<36}{wall:>10.1f}{1:>9.1%}")
    mark = "met" if r["met"] else "missed"
    print(
        f"outside training steps: {r['outside_training_steps']:.1%} of the sweep "
        f"(target <= {r['target']:.0%}: {mark})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="peft-bench sweep_overhead", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "overrides", nargs="*", help=f"bench.run.train overrides (default: {DEFAULT_OVERRIDES[0]})"
    )
    parser.add_argument(
        "--results", help="results folder for the sweep's runs (default: a new temporary one)"
    )
    parser.add_argument("--json", help="also write the split as JSON to this file")
    args = parser.parse_args(argv)
    results = Path(args.results or tempfile.mkdtemp(prefix="peft-bench-overhead-"))
    if results.exists() and any(results.iterdir()):
        parser.error(f"--results {results} is not empty: its runs would resume instead of training")
    wall = run_sweep(args.overrides or DEFAULT_OVERRIDES, results)
    runs = [run.metrics() for run in RunFolder.under(results)]
    runs = [m for m in runs if "phase_time_s" in m]
    if not runs:
        raise SystemExit(f"error: the sweep wrote no run with phase times under {results}")
    r = report(split(runs, wall), wall, len(runs), install_seconds())
    print_report(r)
    print(f"runs: {results}")
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
