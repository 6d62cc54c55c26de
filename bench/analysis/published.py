"""Published numbers beside ours: the papers' scores from the reference tables (``bench/reference``, a
link to ``results/reference``, whose README cites them, or a results folder's own ``reference/``), read by
``load_reference`` and set beside the leaderboard's rows by ``add_reference``; a published average matches
one of ours only when both cover the same tasks, and a published row with no run of ours is kept, marked
``reference`` (``--with-reference``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.analysis.columns import tidy
from bench.analysis.selection import AVG_TASK

REFERENCE_COLUMNS = ("task", "variant", "model", "metric", "score", "params_m", "source")
REPO_REFERENCE = Path(__file__).resolve().parents[1] / "reference"  # a link to results/reference


def reference_dir(results: str | Path) -> Path:
    """``<results>/reference`` when it holds published numbers, else the repository's."""
    mine = Path(results) / "reference"
    return mine if any(mine.glob("*.csv")) else REPO_REFERENCE


def load_reference(folder: str | Path) -> pd.DataFrame:
    """Published numbers: every ``*.csv`` of the folder (columns REFERENCE_COLUMNS; '#' starts a comment).

    An optional ``tasks`` column names the tasks of a published average (comma-separated) when its
    per-task rows are not in the tables.
    """
    files = sorted(Path(folder).glob("*.csv"))
    if not files:
        raise FileNotFoundError(f"no published numbers (*.csv) in {folder}")
    ref = pd.concat([pd.read_csv(f, comment="#") for f in files], ignore_index=True)
    missing = [c for c in REFERENCE_COLUMNS if c not in ref.columns]
    if missing:
        raise ValueError(f"reference tables in {folder} lack columns {', '.join(missing)}")
    return ref


def averaged_tasks(ref: pd.DataFrame) -> dict[tuple[str, str], set[str]]:
    """Per (variant, model) with a published average: the tasks it covers, from its ``tasks`` cell when
    given, else the tasks the reference tables have rows for."""
    out = {}
    for r in ref[ref["task"] == AVG_TASK].itertuples():
        named = getattr(r, "tasks", None)
        if isinstance(named, str) and named.strip():
            out[(r.variant, r.model)] = {t.strip() for t in named.split(",")}
        else:
            mine = ref[(ref["variant"] == r.variant) & (ref["model"] == r.model) & (ref["task"] != AVG_TASK)]
            out[(r.variant, r.model)] = set(mine["task"])
    return out


def _reference_key(row: pd.Series, covered: dict[tuple[str, str], set[str]]) -> tuple[str, str, str] | None:
    """Our row's (task, variant, model); an average only matches one over exactly the same tasks."""
    if row["task"] == AVG_TASK:
        ours = set(str(row.get("tasks", "")).split(","))
        if ours != covered.get((row["variant"], row["model"])):
            return None
    return row["task"], row["variant"], row["model"]


def add_reference(table: pd.DataFrame, ref: pd.DataFrame, task: str | None = None) -> pd.DataFrame:
    """Published numbers beside ours (``published``); the rest as rows marked ``reference``."""
    covered = averaged_tasks(ref)
    if task is not None:
        ref = ref[ref["task"] == task]
    lookup = {(r.task, r.variant, r.model): r for r in ref.itertuples()}
    keys = [_reference_key(row, covered) for _, row in table.iterrows()]
    matched = set(keys)
    ours = table.assign(
        source="ours",
        published=[lookup[k].score if k in lookup else None for k in keys],
        published_source=[lookup[k].source if k in lookup else None for k in keys],
    )
    extra = pd.DataFrame(
        [
            {
                "task": r.task,
                "variant": r.variant,
                "model": r.model,
                "hparams": "reference",
                "main_metric": r.metric,
                "trainable_params": r.params_m * 1e6,
                "published": r.score,
                "published_source": r.source,
                "source": "reference",
            }
            for k, r in lookup.items()
            if k not in matched
        ]
    )
    columns = list(
        dict.fromkeys([*table.attrs.get("columns", table.columns), "published", "published_source", "source"])
    )
    merged = tidy(pd.concat([ours, extra], ignore_index=True) if len(extra) else ours, columns)
    merged.attrs["incomplete"] = table.attrs.get("incomplete", [])
    merged.attrs["mixed_metrics"] = table.attrs.get("mixed_metrics", "")
    return merged
