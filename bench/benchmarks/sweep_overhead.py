"""Where a sweep's wall time goes: the demo's (or any sweep's) time split into install, startup, model
load, tokenization, training steps and evaluation, with its CPU utilisation and evaluation's share.

    python -m bench sweep_overhead                       # make demo's sweep: experiment=demo
    python -m bench sweep_overhead experiment=demo variant=lora,dora   # any overrides of bench.run.train

It runs ``python -m bench train -m <overrides>`` once, into a new results folder (so every run trains,
none resumes), timing the whole command from outside, and adds up each run's ``phase_time_s``
(``bench.run.phase_times``). Startup is the wall time outside every run: interpreter, imports, Hydra's
composition and launcher, between runs. Install is the one-off ``make`` install, read from the seconds
the Makefile records in the virtual environment when it installed; it is shown apart from the sweep. The
figure to watch is the sweep's wall time outside training steps (target: ``TARGET_OUTSIDE_STEPS``).

Cost: the CPU utilisation is the sweep's CPU time over its wall time times the cores it may use; the CPU
time is the command's and its launcher's workers' (``getrusage`` of the processes it waited for), and
the runs' own (each run's ``phase_time_s["cpu"]``) is shown beside it. Evaluation's share is each run's
``evaluate`` seconds over its ``run`` seconds: over all the runs, and the lowest and highest of one run
(target: ``TARGET_EVALUATION``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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
TARGET_EVALUATION = 0.15  # the project's target for evaluation's share of a demo run's time
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


def children_cpu_seconds() -> float:
    """User and system CPU seconds of the child processes this process has waited for, and theirs."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_sweep(overrides: list[str], results: Path) -> tuple[float, float]:
    """Wall and CPU seconds of ``python -m bench train -m overrides`` writing into ``results``."""
    env = os.environ | {RESULTS_ENV: str(results)}
    cpu = children_cpu_seconds()
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bench", "train", "-m", *overrides], env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"error: the sweep exited with {proc.returncode}; its runs are in {results}")
    return wall, children_cpu_seconds() - cpu


def split(runs: list[dict[str, Any]], wall: float) -> dict[str, float]:
    """Seconds per phase over ``runs`` (their ``phase_time_s``), startup (outside every run) and the
    rest of the runs' time, for a sweep of ``wall`` seconds."""
    times = [m["phase_time_s"] for m in runs]
    total = {phase: sum(t[phase] for t in times) for phase in PHASES}
    in_runs = sum(t["run"] for t in times)
    return {"startup": wall - in_runs, **total, "other": in_runs - sum(total.values())}


def evaluation_share(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Evaluation's share of the runs' wall time: over all of ``runs`` and the lowest and highest of one."""
    times = [m["phase_time_s"] for m in runs if m["phase_time_s"]["run"] > 0]
    shares = [t["evaluate"] / t["run"] for t in times]
    total = sum(t["evaluate"] for t in times) / sum(t["run"] for t in times)
    return {"runs": round(total, 4), "min": round(min(shares), 4), "max": round(max(shares), 4)}


def cpu_in_runs(runs: list[dict[str, Any]]) -> float | None:
    """The runs' own CPU seconds added up; None when a run did not record them."""
    seconds = [m["phase_time_s"].get("cpu") for m in runs]
    return None if None in seconds else round(sum(seconds), 2)


def install_seconds(record: Path = INSTALL_RECORD) -> float | None:
    try:
        return float(record.read_text())
    except (OSError, ValueError):
        return None


def report(
    runs: list[dict[str, Any]], wall: float, install: float | None, cpu_s: float, n_cores: int
) -> dict[str, Any]:
    """The split of a sweep of ``runs`` that took ``wall`` seconds and ``cpu_s`` CPU seconds on
    ``n_cores`` cores, against the targets."""
    parts = split(runs, wall)
    outside = (wall - parts["train_steps"]) / wall
    evaluation = evaluation_share(runs)
    return {
        "runs": len(runs),
        "wall_s": round(wall, 2),
        "install_s": install,
        "phases_s": {k: round(v, 2) for k, v in parts.items()},
        "outside_training_steps": round(outside, 4),
        "target": TARGET_OUTSIDE_STEPS,
        "met": outside <= TARGET_OUTSIDE_STEPS,
        "cpu_s": round(cpu_s, 2),
        "cpu_in_runs_s": cpu_in_runs(runs),
        "cores": n_cores,
        "cpu_utilisation": round(cpu_s / (wall * n_cores), 4),
        "evaluation_share": evaluation,
        "evaluation_target": TARGET_EVALUATION,
        "evaluation_met": evaluation["max"] <= TARGET_EVALUATION,
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
    in_runs = "not recorded" if r["cpu_in_runs_s"] is None else f"{r['cpu_in_runs_s']:.0f} s"
    print(
        f"CPU: {r['cpu_s']:.0f} s over {wall:.0f} s on {r['cores']} cores: {r['cpu_utilisation']:.1%} "
        f"utilisation (in the runs: {in_runs})"
    )
    e, mark = r["evaluation_share"], "met" if r["evaluation_met"] else "missed"
    print(
        f"evaluation: {e['runs']:.1%} of the runs' time, {e['min']:.1%} to {e['max']:.1%} of one run "
        f"(target <= {r['evaluation_target']:.0%} of each: {mark})"
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
    wall, cpu_s = run_sweep(args.overrides or DEFAULT_OVERRIDES, results)
    runs = [run.metrics() for run in RunFolder.under(results)]
    runs = [m for m in runs if "phase_time_s" in m]
    if not runs:
        raise SystemExit(f"error: the sweep wrote no run with phase times under {results}")
    r = report(runs, wall, install_seconds(), cpu_s, cores())
    print_report(r)
    print(f"runs: {results}")
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
