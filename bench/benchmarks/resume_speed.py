"""Resume-lookup benchmark: the results index (``bench.results.index``) against the scan it replaced.

    python -m bench resume_speed --runs 20000

Builds a results folder of ``--runs`` run folders in a temporary folder, as runs make them (sweeps of
500; each run folder holds a metrics.json shaped like a real run's, ``--template``, with its own config
hash, and an empty ``.hydra/`` as Hydra leaves one; the index gets two lines a run), then times resume's
lookup at a run's start for a config hash that completed (a hit: the run in the middle of path order)
and for one that did not (a miss: what most lookups of a new sweep are):

- scan: the lookup before the index, parsing every metrics.json in path order up to a hit;
- index, rebuilt: the first lookup in a results folder without an index (one from before it), which
  rebuilds the index from every run folder;
- index: the lookup with the index in place (every later run start).

Plus what the index adds to each run: one appended line (a run appends two: started, ended). Reported:
the median seconds of ``--repeats`` and the scan's time over each (``scan / this``), from this one run.
Every file was just written, so the OS file cache is warm for all of them: a cold cache slows the scan
most.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from bench.results import index
from bench.results.run_folder import RunFolder

ARCHIVE = Path(__file__).resolve().parents[2] / "results/archive/compare"
REFERENCE_RUN = RunFolder(ARCHIVE / "rt_polarity/lora-lrx1.0-s0")
TEMPLATE = REFERENCE_RUN.metrics_path
SWEEP_SIZE = 500
MISS = "f" * 12  # no synthetic run has it (their hashes count up from 000000000000)


def scan(results_dir: Path, cfg_hash: str) -> Path | None:
    """The lookup before the index (``bench.results.run_folder.is_complete`` until then)."""
    for run in RunFolder.under(results_dir):
        try:
            m = run.metrics()
        except (OSError, json.JSONDecodeError):
            continue
        if m.get("config_hash") == cfg_hash and m.get("status") == "completed":
            return run.path
    return None


def build(root: Path, runs: int, template: dict[str, Any]) -> list[Path]:
    """``runs`` completed run folders under ``root``, recorded as the runner records them (a line when
    each starts, its metrics.json, a line when it ends); returns them in path order."""
    folders = []
    for i in tqdm(range(runs), desc="run folders", unit="run", dynamic_ncols=True, disable=None):
        folder = root / "sweeps" / f"sweep{i // SWEEP_SIZE:03d}" / f"{i % SWEEP_SIZE}_lora-rt_polarity-s{i}"
        (folder / ".hydra").mkdir(parents=True)
        cfg_hash = f"{i:012x}"
        index.record(root, folder, cfg_hash, index.RUNNING)
        RunFolder(folder).write_metrics({**template, "config_hash": cfg_hash, "run_dir": str(folder)})
        index.record(root, folder, cfg_hash, index.COMPLETED)
        folders.append(folder)
    return sorted(folders)


def timed(
    fn: Callable[[], Any], repeats: int, before: Callable[[], None] = lambda: None
) -> tuple[float, Any]:
    """The median seconds of ``repeats`` calls of ``fn`` (each after an untimed ``before``) and its result."""
    times = []
    for _ in range(repeats):
        before()
        with contextlib.redirect_stderr(io.StringIO()):  # the rebuild's notice
            start = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - start)
    return statistics.median(times), out


def measure(root: Path, folders: list[Path], repeats: int) -> list[dict[str, Any]]:
    hit = folders[len(folders) // 2]
    hashes = {"hit": RunFolder(hit).metrics()["config_hash"], "miss": MISS}
    expected = {"hit": hit, "miss": None}
    index_file = index.index_path(root)
    recorded = index_file.read_bytes()  # two lines a run, as the runs wrote it

    def restore() -> None:
        index_file.write_bytes(recorded)

    def remove() -> None:
        index_file.unlink(missing_ok=True)

    rows = []
    for lookup, cfg_hash in hashes.items():
        methods = {
            "scan": (lambda h=cfg_hash: scan(root, h), restore),
            "index, rebuilt": (lambda h=cfg_hash: index.completed_run(root, h), remove),
            "index": (lambda h=cfg_hash: index.completed_run(root, h), restore),
        }
        for method, (fn, before) in methods.items():
            seconds, found = timed(fn, repeats, before)
            if found != expected[lookup]:
                raise RuntimeError(f"{method} found {found} for the {lookup}, not {expected[lookup]}")
            rows.append({"lookup": lookup, "method": method, "seconds": seconds})
        for row in rows[-3:]:
            row["scan_over_this"] = rows[-3]["seconds"] / row["seconds"]
    extra = root / "sweeps" / "extra"
    seconds, _ = timed(lambda: index.record(root, extra, MISS, index.RUNNING), repeats)
    rows.append({"lookup": "append", "method": "index (one line)", "seconds": seconds, "scan_over_this": ""})
    return rows


def print_table(rows: list[dict[str, Any]], runs: int, size: int, repeats: int) -> None:
    print(f"{'lookup':<8}{'method':<18}{'seconds':>10}{'scan / this':>13}")
    for r in rows:
        ratio = f"{r['scan_over_this']:.1f}" if r["scan_over_this"] != "" else "-"
        print(f"{r['lookup']:<8}{r['method']:<18}{r['seconds']:>10.3g}{ratio:>13}")
    print(f"{runs:,} run folders, metrics.json of {size:,} bytes each; median of {repeats}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="peft-bench resume_speed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20_000, help="run folders in the results folder")
    parser.add_argument("--repeats", type=int, default=3, help="timed lookups of each kind (median reported)")
    parser.add_argument("--template", type=Path, default=TEMPLATE, help="a real run's metrics.json")
    parser.add_argument("--dir", type=Path, help="a folder to build it in (default: the system's temp)")
    args = parser.parse_args(argv)
    for name in ("runs", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}={getattr(args, name)} is not valid: it must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    template = json.loads(args.template.read_text())
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        folders = build(root, args.runs, template)
        rows = measure(root, folders, args.repeats)
        print_table(rows, args.runs, RunFolder(folders[0]).metrics_path.stat().st_size, args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
