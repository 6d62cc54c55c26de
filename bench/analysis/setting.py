"""The setting of a comparison in one sentence, for the report's first screen: model, budget (epochs,
batch, max length, train/eval examples), device, seeds per selected configuration, and the code the runs
came from (metrics.json ``code_version`` when recorded, else ``git_commit``; ``-dirty`` or ``code_dirty``:
from a modified tree)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd

from bench.analysis.configurations import run_budget
from bench.analysis.run_predictions import locate
from bench.config.budget import budget_label
from bench.plural import plural
from bench.results.run_folder import RunFolder

SHORT = 12  # hex digits of a commit
LISTED = 4  # values named when the runs differ, most runs first


def recorded(runs: pd.DataFrame, source: Path) -> list[dict]:
    """The metrics.json of each completed run that can be found (its device and code version are not in
    the runs CSV)."""
    out = []
    for run_dir in runs["run_dir"]:
        folder = locate(str(run_dir), source, "metrics.json") if str(run_dir).strip() else None
        if folder is not None:
            out.append(RunFolder(folder).metrics())
    return out


def counted(values: list[str], what: str) -> str:
    """ "cpu" for one value, "2 devices (cpu: 10 runs, cuda: 2 runs)" for several (LISTED at most)."""
    counts = Counter(values)
    if len(counts) == 1:
        return next(iter(counts))
    common = counts.most_common()
    each = ", ".join(f"{v}: {plural(n, 'run')}" for v, n in common[:LISTED])
    more = f", {len(common) - LISTED} more" if len(common) > LISTED else ""
    return f"{plural(len(counts), what)} ({each}{more})"


def code_text(metrics: list[dict], runs: pd.DataFrame) -> str:
    """The code the runs came from: one commit, or how many, and how many runs from a modified tree."""
    versions, dirty = [], 0
    for m in metrics:
        version = m.get("code_version") or str(m.get("git_commit") or "unknown")
        dirty += bool(m.get("code_dirty")) or version.endswith("-dirty")
        versions.append(version.removesuffix("-dirty")[:SHORT])
    if not versions:
        versions = [str(c).removesuffix("-dirty")[:SHORT] or "unknown" for c in runs["git_commit"]]
        dirty = int(runs["git_commit"].astype(str).str.endswith("-dirty").sum())
    field = "code_version" if any(m.get("code_version") for m in metrics) else "git_commit"
    tree = f"{plural(dirty, 'run')} from a modified tree" if dirty else "no run from a modified tree"
    return f"code ({field}): {counted(versions, 'commit')}; {tree}"


def setting_text(runs: pd.DataFrame, rows: pd.DataFrame, source: str | Path) -> str:
    """The setting of the completed runs, in one sentence."""
    done = runs[runs["status"] == "completed"]
    if done.empty:
        return "Setting: no completed run."
    metrics = recorded(done, Path(source))
    budgets = [budget_label(run_budget(run)) for _, run in done.iterrows()]
    devices = [str(m.get("device") or "unknown") for m in metrics] or ["unknown"]
    seeds = sorted({int(n) for n in rows["n"].dropna()}) if "n" in rows else []
    seed_text = "-".join(str(n) for n in seeds[:: max(1, len(seeds) - 1)]) if seeds else "?"
    return (
        f"Setting: model {counted(done['model'].astype(str).tolist(), 'model')}; budget "
        f"{counted(budgets, 'budget')} (epochs x batch, max length, train/eval examples); device "
        f"{counted(devices, 'device')}; {seed_text} seeds per selected configuration; "
        f"{code_text(metrics, done)}."
    )
