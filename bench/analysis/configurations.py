"""One leaderboard row per configuration, and the tuned board built from those rows. A configuration is
the runs whose resolved config is the same but for the seed (their ``config_key``); ``configurations``
gives one row each: seeds, test mean / std / median (x100, as papers print them), the dev mean that
selects, the chance score, the task's other test metrics and the costs. When the budgets
(``bench.config.budget``) of a task's rows differ, a ``budget`` column says so, and ``!`` marks the rows
off the task's most common budget. ``tuned_board`` (the default view) keeps per (task, variant, model,
budget) the configuration with the best mean dev score (``bench.analysis.selection``), marks the variants
tied with each task's best (``bench.analysis.significance``) and adds averages over the variants that ran
every task. Reruns of one config hash count once (the latest completed row); runs that failed, diverged or
ran out of memory are counted, never averaged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from bench.analysis.columns import COMPACT_COLUMNS, CONFIG_COLUMNS, TUNED_COLUMNS, tidy
from bench.analysis.runs_table import COST_COLUMNS, prepare
from bench.analysis.selection import averages, sort_tasks, tuned
from bench.analysis.significance import mark_ties
from bench.config.budget import BUDGET, UNKNOWN, budget_label, budget_of
from bench.inputs.metrics import DEV, TEST

NOT_METRICS = ("epoch", "step")
GROUP = ["task", "variant", "model", "row_key"]  # one leaderboard row: a configuration
OFF_BUDGET = "! "  # marks the budget of a row off its task's most common budget


def configurations(df: pd.DataFrame, task: str | None = None) -> pd.DataFrame:
    """One row per configuration (see ``summarize``), ranked per task by its test mean; a ``budget``
    column when the budgets of some task's rows differ (see ``flag_budgets``). Not yet tidied: it keeps
    each row's per-seed test scores (``scores_x100``) for ``bench.analysis.selection``."""
    runs = prepare(df)
    if task is not None:
        tasks = sort_tasks(runs["task"].unique())
        if task not in tasks:
            raise ValueError(
                f"unknown task {task!r}; tasks in the leaderboard: {', '.join(tasks) or '(none)'}"
            )
        runs = runs[runs["task"] == task]
    table = pd.DataFrame([summarize(g) for _, g in runs.groupby(GROUP, sort=False)])
    if table.empty:
        raise ValueError("the leaderboard has no runs to aggregate")
    table["rank"] = table.groupby("task")["mean_x100"].rank(ascending=False, method="min")
    return flag_budgets(table)


def aggregate(df: pd.DataFrame, task: str | None = None) -> pd.DataFrame:
    """Every configuration (``configurations``), tidied for display (``--configs``)."""
    return tidy(configurations(df, task), CONFIG_COLUMNS)


def tuned_board(
    df: pd.DataFrame, task: str | None = None, full: bool = False, source: str | Path | None = None
) -> pd.DataFrame:
    """The tuned leaderboard (the default view): per task, each variant at its selected configuration
    (``bench.analysis.selection.tuned``), its ties with the best (``bench.analysis.significance.mark_ties``:
    paired on the test predictions of the runs found from ``source``), and the averages over the tasks
    every listed variant ran (``attrs["mixed_metrics"]``: their metrics, when the tasks' differ);
    COMPACT_COLUMNS unless ``full``."""
    table = mark_ties(tuned(configurations(df, task)), source=source)
    avg, incomplete = averages(table)
    mixed = sorted({m for m in avg.get("main_metric", []) if "+" in m})
    if len(avg):
        table = pd.concat([table, avg], ignore_index=True)
    table = tidy(table, TUNED_COLUMNS if full else COMPACT_COLUMNS)
    table.attrs["incomplete"] = incomplete
    table.attrs["mixed_metrics"] = ", ".join(mixed)  # the avg rows' metrics when they differ, else ""
    return table


def summarize(runs: pd.DataFrame) -> dict[str, Any]:
    """One configuration: counts, test-score statistics (x100), its mean dev score (what selects), the
    chance score, means of the task's other test metrics and of the cost columns, and the tuning time
    it spent (``time_total_s``: the train time of all its runs)."""
    first = runs.iloc[0]
    done = runs[runs["status"] == "completed"]
    scores = done["score"] * 100
    row = {
        "task": first["task"],
        "variant": first["variant"],
        "model": first["model"],
        "hparams": first["hp_label"],
        "budget": budget_label(run_budget(first)),
        "budget_key": budget_label(run_budget(first)),  # unmarked by flag_budgets: what tuning groups by
        "select_on": first["select_on"] or TEST,  # a run recorded before dev sets selected on its test
        "seeds": len(done),
        "failed": len(runs) - len(done),
        "main_metric": first["main_metric"],
        "mean_x100": scores.mean(),
        "std_x100": scores.std(ddof=1),
        "median_x100": scores.median(),
        "dev_x100": done["dev_score"].mean() * 100,
        "chance_x100": done["chance_score"].mean() * 100,
        "scores_x100": scores.tolist(),
        "seeds_done": done["seed"].tolist(),  # which seeds, for tuned selection (``seeds_run``)
        "seeds_run": runs["seed"].tolist(),
        "run_dirs": done["run_dir"].tolist(),  # where each score's test predictions are (significance)
        "lr": first["lr"],
        "time_total_s": runs["train_time_s"].sum(),
    }
    others = pd.DataFrame([test_metrics(m) for m in done["metrics"]], index=done.index)
    for name in others.columns:
        if name != first["main_metric"] and name not in NOT_METRICS and "loss" not in name:
            row[f"{name}_x100"] = pd.to_numeric(others[name], errors="coerce").mean() * 100
    row.update({c: done[c].mean() for c in COST_COLUMNS})
    return row


def test_metrics(values: dict[str, Any]) -> dict[str, Any]:
    """A run's test metrics by their bare names (``test/f1`` -> ``f1``); dev metrics left out."""
    prefix = f"{TEST}/"
    return {k.removeprefix(prefix): v for k, v in values.items() if not k.startswith(f"{DEV}/")}


def run_budget(run: pd.Series) -> dict[str, Any]:
    """A run's budget (BUDGET's settings); a run recorded before ``settings``: what its hparams hold."""
    if run["settings"]:
        return budget_of(run["settings"])
    hp = run["hparams"]
    return {k: hp.get(old, UNKNOWN) if old and hp else UNKNOWN for k, old in BUDGET.items()}


def flag_budgets(table: pd.DataFrame) -> pd.DataFrame:
    """Keep the ``budget`` column only when the budgets of some task's rows differ; then mark the rows
    off their task's most common budget (every row when no budget is the most common of two or more)."""
    differ = table.groupby("task")["budget"].nunique() > 1
    if not differ.any():
        return table.drop(columns="budget")
    budgets = table["budget"].copy()
    for task in differ[differ].index:
        sel = table["task"] == task
        counts = table.loc[sel, "budget"].value_counts()
        common = counts.index[0] if counts.iloc[0] > 1 and (counts == counts.iloc[0]).sum() == 1 else None
        off = sel & (table["budget"] != common)
        budgets[off] = OFF_BUDGET + table.loc[off, "budget"]
    return table.assign(budget=budgets)
