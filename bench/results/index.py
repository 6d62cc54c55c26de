"""The results index, ``<results>/.index.jsonl``: which run folder holds which config hash, and its
status, so that resume finds a completed run without reading every metrics.json (``completed_run``).

One JSON line per event of a run folder, ``{"config_hash", "status", "run"}`` (``run``: the folder
relative to the results folder, so a moved or cloned results folder keeps its index), appended under a
file lock in one write: ``running`` when a run starts, its metrics.json status when it ends (after that
file is written), ``resumed`` when resume skips it in a folder of its own. A folder's last line is its
state. The file is hidden because it is a cache of the run folders: deleting it is safe.

A lookup reads the index (no lock) and trusts no line without its folder's metrics.json: a folder whose
last line has the hash and says ``completed``, or ``running`` (a kill between metrics.json and the line
``completed`` leaves that), is a hit only if its metrics.json parses and says completed with that hash:
one file read. A miss must be cheap too, since most lookups of a new sweep are misses: rather than read
every metrics.json, the lookup lists the folders (about 20 ms for 20,000 runs), entering neither a folder
the index names nor a hidden one (``.hydra``, ``.submitit``). A folder it finds with a metrics.json was
made without the index (from before it, copied in, pulled with git): it is read and added, with a notice.
A ``completed`` line that its metrics.json no longer bears out (the folder deleted, the file rewritten or
damaged) is corrected by a new line. A missing index, or one with a line that is not a record (a crash
mid-append), is rebuilt from the run folders under the lock, written aside and renamed over it, with a
notice. A metrics.json that does not parse (truncated) is named on stderr when it is recorded as
``unreadable``, once: not trusted, so its run runs again. With 20,000 runs a lookup takes 0.06-0.08 s
where the scan took about 1 s (``python -m bench resume_speed``).

Not seen until a rebuild: a metrics.json rewritten by hand in a folder whose last line is neither
``completed`` nor ``running`` (failed edited to completed).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from filelock import FileLock

from bench.log import log
from bench.results.run_folder import METRICS, RunFolder

INDEX = ".index.jsonl"
LOCK_TIMEOUT_S = 300  # a rebuild of 20,000 run folders holds the lock for seconds
COMPLETED = "completed"
RUNNING = "running"  # started, not ended (or killed before its metrics.json, or between it and its line)
RESUMED = "resumed"  # skipped by resume: the folder holds resumed.json only
MISSING = "missing"  # no metrics.json
UNREADABLE = "unreadable"  # a metrics.json that does not parse
State = tuple[str | None, str]  # (config_hash, status)


def index_path(results_dir: str | Path) -> Path:
    return Path(results_dir) / INDEX


def completed_run(results_dir: str | Path, cfg_hash: str) -> Path | None:
    """The folder of a completed run with this config hash under ``results_dir``, if there is one: the
    one function that reads earlier results to decide what a run does (resume)."""
    root = Path(results_dir)
    if not root.is_dir():
        return None
    index = _load(root)
    found = list(_unindexed(root, index))
    added = _append(root, found, unless_indexed=True) if found else {}
    if added:
        index.update(added)
        log.warning(
            f"added {len(added)} run folder(s) to the results index {index_path(root)} "
            "(made without it: from before it, or copied or pulled in)"
        )
    candidates = sorted(
        run for run, (h, status) in index.items() if h == cfg_hash and status in (COMPLETED, RUNNING)
    )
    for run in candidates:
        state = _state(root / run)
        if state == (cfg_hash, COMPLETED):
            return root / run
        if index[run][1] == COMPLETED or state[1] == UNREADABLE:  # a running one may not have ended yet
            _append(root, [run])
    return None


def run_folders(results_dir: str | Path) -> list[Path]:
    """Every run folder (one holding a metrics.json) under ``results_dir`` as the index finds them (no
    hidden folder, none inside another run folder), in path order."""
    root = Path(results_dir)
    return [root / run for run in sorted(_unindexed(root, {}))]


def record(results_dir: str | Path, run_dir: str | Path, cfg_hash: str, status: str) -> None:
    """Append a run folder's new state; a folder outside ``results_dir`` is not indexed (nor searched)."""
    root = Path(results_dir)
    run = _relative(Path(run_dir), root)
    if run is not None:
        with _lock(root):
            _write(root, {run: (cfg_hash, status)})


def _relative(run_dir: Path, root: Path) -> str | None:
    try:
        run = Path(os.path.abspath(run_dir)).relative_to(os.path.abspath(root))
    except ValueError:
        return None
    return run.as_posix() if run.parts else None


def lock_path(results_dir: str | Path) -> Path:
    """The index's lock file, beside it."""
    return Path(results_dir) / f"{INDEX}.lock"


def _lock(root: Path) -> FileLock:
    return FileLock(str(lock_path(root)), timeout=LOCK_TIMEOUT_S)


def _line(run: str, state: State) -> str:
    return json.dumps({"config_hash": state[0], "status": state[1], "run": run}) + "\n"


def _write(root: Path, states: dict[str, State]) -> None:
    """Append the lines in one write (the lock held), so parallel runs never interleave them."""
    data = "".join(_line(run, state) for run, state in states.items()).encode()
    with index_path(root).open("ab") as f:
        f.write(data)


def _append(root: Path, runs: Iterable[str], unless_indexed: bool = False) -> dict[str, State]:
    """Read these folders' metrics.json under the lock and append their states (a run that ends meanwhile
    appends its own line after ours, so the last line stays right). ``unless_indexed``: only the folders
    the index still lacks, read again under the lock (a run's line ``running`` precedes its metrics.json,
    so a run that started after the lookup read the index is named there by now)."""
    with _lock(root):
        if unless_indexed:
            try:
                known = _parse(index_path(root).read_text())
            except (OSError, ValueError):  # damaged meanwhile: the next lookup rebuilds it
                known = {}
            runs = [run for run in runs if run not in known]
        states = {run: _state(root / run, warn=True) for run in runs}
        _write(root, states)
    return states


def _state(folder: Path, warn: bool = False) -> State:
    """What ``folder/metrics.json`` says: its (config_hash, status), else MISSING or UNREADABLE."""
    run = RunFolder(folder)
    try:
        m = run.metrics()
    except FileNotFoundError:
        return None, MISSING
    except (OSError, ValueError):
        m = None
    if not isinstance(m, dict):
        if warn:
            log.warning(
                f"{run.metrics_path} does not parse (truncated?): not trusted, its run will run again"
            )
        return None, UNREADABLE
    return m.get("config_hash"), str(m.get("status"))


def _unindexed(root: Path, known: dict[str, State]) -> Iterable[str]:
    """The run folders (those holding metrics.json) under ``root`` that ``known`` does not name.

    Lists folders only; enters no known folder, hidden one (.hydra, .submitit) or link (as glob did)."""
    stack = [("", str(root))]
    while stack:
        rel, path = stack.pop()
        try:
            with os.scandir(path) as it:
                entries = list(it)
        except OSError:  # removed meanwhile, or not a folder
            continue
        if rel and any(e.name == METRICS for e in entries):
            yield rel
            continue
        for e in entries:
            run = f"{rel}/{e.name}" if rel else e.name
            if not e.name.startswith(".") and run not in known and e.is_dir(follow_symlinks=False):
                stack.append((run, e.path))


def _load(root: Path) -> dict[str, State]:
    """Each indexed folder's last state; a missing or damaged index is rebuilt first."""
    try:
        return _parse(index_path(root).read_text())
    except (OSError, ValueError):
        pass  # missing or damaged: look again under the lock (another process may be appending, rebuilding)
    with _lock(root):
        try:
            return _parse(index_path(root).read_text())
        except FileNotFoundError:
            reason = "it was missing"
        except (OSError, ValueError) as e:
            reason = str(e)
        return _rebuild(root, reason)


def _parse(text: str) -> dict[str, State]:
    """Each folder's last state; ValueError names the first line that is not a record."""
    lines = [line for line in text.split("\n") if line.strip()]
    try:  # one call for the whole file: several times faster than one per line
        records = json.loads("[" + ",".join(lines) + "]")
    except json.JSONDecodeError:
        records = None
    if records is None or len(records) != len(lines):  # a line holding "{...}, {...}" joins as two
        records = [_parse_line(line, n) for n, line in enumerate(lines, 1)]
    out = {}
    for n, r in enumerate(records, 1):
        if not (isinstance(r, dict) and isinstance(r.get("run"), str) and isinstance(r.get("status"), str)):
            raise ValueError(f"line {n} is not a record of a run folder")
        out[r["run"]] = (r.get("config_hash"), r["status"])
    return out


def _parse_line(line: str, n: int):
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        raise ValueError(f"line {n} does not parse (cut short by a crash?)") from None


def _rebuild(root: Path, reason: str) -> dict[str, State]:
    """The index made again from every run folder's metrics.json (the lock held)."""
    states = {run: _state(root / run, warn=True) for run in sorted(_unindexed(root, {}))}
    path = index_path(root)
    tmp = path.with_name(f"{INDEX}.tmp")
    tmp.write_text("".join(_line(run, state) for run, state in states.items()))
    tmp.replace(path)
    if states or reason != "it was missing":  # a new results folder is no news
        log.warning(f"rebuilt the results index {path} from {len(states)} run folder(s): {reason}")
    return states
