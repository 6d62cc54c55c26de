"""The leaderboard's column lists, one per view, and ``tidy``, which puts a table in a view's shape:
``CONFIG_COLUMNS`` (every configuration, ``--configs``), ``COMPACT_COLUMNS`` (the tuned table that fits a
page, the default) and ``TUNED_COLUMNS`` (the tuned table with every column, ``--full``), each with the
trainable parameters (``CAPACITY``) right after the test score; ``METRICS`` in a list stands for the
task's other test metrics (``*_x100``), and an ``OPTIONAL`` column is shown only when the table has it."""

from __future__ import annotations

import pandas as pd

from bench.analysis.runs_table import COST_COLUMNS
from bench.analysis.selection import by_task

STAT_COLUMNS = (
    "mean_x100", "std_x100", "median_x100", "ci95_x100", "ci_low_x100", "ci_high_x100", "dev_x100",
    "chance_x100", "scores_x100",
)  # fmt: skip
METRICS = "<metrics>"  # in a column list: the task's other test metrics (*_x100)
# shown only when the table has them
OPTIONAL = (
    "budget", "select_on", "grid_seeds", "published", "avg_rank", "tasks", "published_source", "source",
)  # fmt: skip
CAPACITY = ("trainable_params", "pct_trainable")  # beside the score in every view
OTHER_COSTS = tuple(c for c in COST_COLUMNS if c not in CAPACITY)
CONFIG_COLUMNS = [
    "rank", "task", "variant", "model", "hparams", "budget", "select_on", "seeds", "failed", "main_metric",
    "mean_x100", *CAPACITY, "std_x100", "median_x100", "dev_x100", "chance_x100", "published", METRICS,
    *OTHER_COSTS, "time_total_s", "tasks", "published_source", "source",
]  # fmt: skip
COMPACT_COLUMNS = [
    "rank", "task", "variant", "model", "hparams", "budget", "select_on", "mean_x100", *CAPACITY, "ci95_x100",
    "n", "tied", "dev_x100", "chance_x100", "grid", "grid_seeds", "peak_memory_mb", "train_time_s",
    "tuning_time_s", "edge", "published", "avg_rank", "tasks",
]  # fmt: skip
TUNED_COLUMNS = [
    "rank", "task", "variant", "model", "hparams", "lr", "budget", "select_on", "n", "failed", "grid",
    "grid_runs", "grid_seeds",
    "main_metric", "mean_x100", *CAPACITY, "std_x100", "ci95_x100", "ci_low_x100", "ci_high_x100",
    "median_x100", "p_vs_best", "tied", "tie_test", "dev_x100", "chance_x100", "published", METRICS,
    *OTHER_COSTS, "tuning_time_s", "edge", "avg_rank", "tasks", "published_source", "source",
]  # fmt: skip
INTEGER_COLUMNS = ("rank", "seeds", "failed", "trainable_params", "n", "grid", "grid_runs")


def tidy(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The ``columns`` in order (METRICS expanded; an OPTIONAL one only when the table has it), integer
    columns, rows by task then rank."""
    metric_cols = sorted(c for c in table.columns if c.endswith("_x100") and c not in STAT_COLUMNS)
    cols = []
    for c in columns:
        if c == METRICS:
            cols += metric_cols
        elif c not in OPTIONAL or c in table.columns:
            cols.append(c)
    if "select_on" in cols and table["select_on"].fillna("dev").eq("dev").all():
        cols.remove("select_on")  # shown only when some row follows the papers' convention
    table = table.reindex(columns=cols)
    for col in INTEGER_COLUMNS:
        if col in table.columns:
            table[col] = pd.to_numeric(table[col]).round().astype("Int64")
    table = by_task(table, ["rank", "variant"])
    table.attrs["columns"] = list(dict.fromkeys(c for c in columns if c != METRICS))
    return table
