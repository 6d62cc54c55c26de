"""Tuned selection: every method tuned the same way, selected on dev, reported on test.

A tuning group is (task, variant, model, budget, select_on); its candidates are its configurations
(``bench.analysis.configurations.configurations``: one per point of an lr grid, a rank sweep, any swept
setting). Its task is named with the user's data it read (``bench.analysis.runs_table.task_label``), so
runs on two data folders, or on edited data, are two tasks: data is never a setting to tune. The selected
configuration (``best_candidate``) is the one with the best mean dev score over its seeds among the
candidates run on the most seeds (a failed or diverged run counts as run), so a staged grid (``peft-bench
tune``: every point on one seed, the best on more) selects as a full one does (a tie goes to the lowest
lr, then to the first configuration run); the group reports that configuration's test score: mean,
sample std, 95% confidence interval (Student's t, n - 1 degrees of freedom) and n. With the papers'
convention (select_on test, the paper experiments) the candidate with the best test mean is taken
instead, and the row says so. ``tuning_time_s`` is the train time of every run of every candidate, the
runs a staged grid made and no other: what finding that configuration cost. ``grid_seeds``, shown when
the candidates of some group were run on different numbers of seeds, lists each candidate's, lowest lr
first. ``edge`` says when the selected lr is the lowest or highest of the
group's grid (widen the grid there).

Averages over tasks count only the variants that have a selected row on every task of the table; the
others are named in ``incomplete``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

TUNING_GROUP = ["task", "variant", "model", "budget_key", "select_on"]
CONFIDENCE = 0.95
AVG_TASK = "avg"


def sort_tasks(tasks) -> list[str]:
    """Tasks in alphabetical order, the average last."""
    return sorted(set(tasks), key=lambda t: (t == AVG_TASK, t))


def by_task(table: pd.DataFrame, then: list[str]) -> pd.DataFrame:
    """Rows in ``sort_tasks`` order of their task, then by the ``then`` columns (stable), index reset."""
    order = {t: i for i, t in enumerate(sort_tasks(table["task"]))}
    return (
        table.assign(_t=table["task"].map(order))
        .sort_values(["_t", *then], na_position="last", kind="stable")
        .drop(columns="_t")
        .reset_index(drop=True)
    )


def ci_half_width(scores: list[float], confidence: float = CONFIDENCE) -> float:
    """Half the width of the t confidence interval of the mean of ``scores`` (nan for fewer than 2)."""
    n = len(scores)
    if n < 2:
        return math.nan
    return float(stats.t.ppf((1 + confidence) / 2, n - 1) * np.std(scores, ddof=1) / math.sqrt(n))


def selection_score(configs: pd.DataFrame) -> pd.Series:
    """What a candidate is selected by: its mean dev score, or its test mean under select_on test."""
    return configs["dev_x100"].where(configs["select_on"] != "test", configs["mean_x100"])


def seeds_run(candidates: pd.DataFrame) -> pd.Series:
    """Per candidate, how many seeds it was run on (``seeds_run``: a failed or diverged run counts) among
    the seeds that some candidate completed (``seeds_done``): a staged grid's points below its top ran on
    fewer; a full grid's all ran on every one, whatever failed."""
    completed = set().union(*candidates["seeds_done"]) if len(candidates) else set()
    return candidates["seeds_run"].map(lambda run: len(completed.intersection(run)))


def best_candidate(candidates: pd.DataFrame, score: pd.Series) -> Any:
    """The index label of the selected candidate: among those with a ``score`` that were run on the most
    seeds (``seeds_run``), the best score; a tie goes to the lowest ``lr``, then to the first candidate.
    None when no candidate has a score."""
    scored = candidates.assign(_score=score).dropna(subset=["_score"])
    if scored.empty:
        return None
    runs = seeds_run(scored)
    most = scored[runs == runs.max()]
    return most.sort_values(["_score", "lr"], ascending=[False, True], kind="stable").index[0]


def seeds_per_candidate(group: pd.DataFrame) -> str:
    """The seeds each candidate of a tuning group was run on (``seeds_run``), lowest lr first: "1/3/3/1"."""
    return "/".join(str(n) for n in seeds_run(group.sort_values("lr", kind="stable")))


def tuned(configs: pd.DataFrame) -> pd.DataFrame:
    """One row per tuning group: the selected configuration's columns plus ``grid`` (candidates),
    ``grid_runs``, ``tuning_time_s``, ``ci95_x100``, ``n``, ``edge`` and, when some group's candidates
    differ in seeds (a staged grid), ``grid_seeds``; ranked per task by test mean."""
    table = configs.assign(_select=selection_score(configs))
    rows = []
    for _, group in table.groupby(TUNING_GROUP, sort=False, dropna=False):
        chosen = best_candidate(group, group["_select"])
        if chosen is None:  # no run to select by (all failed): the group still shows, with its failures
            nothing = dict.fromkeys(("mean_x100", "std_x100", "median_x100", "dev_x100", "lr"), math.nan)
            failed = int(group["failed"].sum())
            rows.append(
                group.iloc[0].to_dict()
                | nothing
                | {"hparams": "(no completed run)", "failed": failed, "grid_seeds": None}
            )
            continue
        best = group.loc[chosen]
        rows.append(
            best.to_dict()
            | {
                "grid": len(group),
                "grid_seeds": seeds_per_candidate(group),
                "grid_runs": int(group["seeds"].sum() + group["failed"].sum()),
                "failed": int(group["failed"].sum()),
                "tuning_time_s": group["time_total_s"].sum(),
                "n": int(best["seeds"]),
                "ci95_x100": ci_half_width(best["scores_x100"]),
                "edge": grid_edge(group["lr"], best["lr"]),
            }
        )
    out = pd.DataFrame(rows).drop(columns="_select")
    if not staged(out):
        out = out.drop(columns="grid_seeds")
    out["rank"] = out.groupby("task")["mean_x100"].rank(ascending=False, method="min")
    return out


def staged(table: pd.DataFrame) -> bool:
    """Whether the candidates of some tuning group were run on different numbers of seeds (``grid_seeds``)."""
    return any(len(set(cell.split("/"))) > 1 for cell in table["grid_seeds"].dropna())


def grid_edge(lrs: pd.Series, chosen: float) -> str:
    """ "low" or "high" when ``chosen`` is the smallest or largest of three or more distinct lrs, else ""."""
    grid = sorted(set(lrs.dropna()))
    if len(grid) < 3 or pd.isna(chosen):
        return ""
    return "low" if chosen == grid[0] else "high" if chosen == grid[-1] else ""


def averages(table: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Per (variant, model) with a selected row on every task of ``table``: the mean test score over
    those tasks, the tasks' main metrics (``main_metric``: ``accuracy+pearson`` when that mean mixes
    metrics) and ``avg_rank``, the mean over the tasks of its rank among these rows, which ranks them
    (ranks compare across metrics; a mean of accuracy and Pearson's r does not); and the variants left
    out because they miss a task."""
    tasks = sort_tasks(table["task"])
    if len(tasks) < 2:
        return pd.DataFrame(), []
    rows, scores, incomplete = [], [], []
    for (variant, model), g in table.groupby(["variant", "model"], sort=False):
        g = g.dropna(subset=["mean_x100"])
        if sorted(g["task"]) != tasks or g["task"].duplicated().any():
            incomplete.append(variant)
            continue
        scores.append(g.set_index("task")["mean_x100"])
        rows.append(
            {
                "task": AVG_TASK,
                "variant": variant,
                "model": model,
                "hparams": "selected per task",
                "main_metric": "+".join(sorted(set(g["main_metric"].dropna()))),
                "mean_x100": g["mean_x100"].mean(),
                "tuning_time_s": g["tuning_time_s"].sum(),
                **{
                    c: g[c].mean()
                    for c in ("trainable_params", "pct_trainable", "peak_memory_mb", "train_time_s")
                },
                "tasks": ",".join(tasks),
            }
        )
    avg = pd.DataFrame(rows)
    if len(avg):
        per_task = pd.concat(scores, axis=1, ignore_index=True).rank(axis=1, ascending=False)
        avg["avg_rank"] = per_task.mean().to_numpy()
        avg["rank"] = avg["avg_rank"].rank(method="min")
    return avg, incomplete


def sensitivity(configs: pd.DataFrame) -> pd.DataFrame:
    """Dev (and test) mean against lr for every configuration: how forgiving each method is of its lr.
    Columns task, variant, model, hparams, lr, dev_x100, mean_x100, seeds, selected (the tuned choice),
    and ``one_seed`` when some configuration was run on one seed (a staged grid's points below its top)."""
    chosen = tuned(configs)
    picked = set(zip(chosen["task"], chosen["variant"], chosen["model"], chosen["hparams"], strict=True))
    out = configs[["task", "variant", "model", "hparams", "lr", "dev_x100", "mean_x100", "seeds"]].copy()
    out["selected"] = [
        key in picked for key in zip(out["task"], out["variant"], out["model"], out["hparams"], strict=True)
    ]
    once = (configs["seeds"] + configs["failed"] == 1).to_numpy()
    if once.any():
        out["one_seed"] = once
    return by_task(out, ["variant", "model", "lr"])


def row_in_words(row: dict[str, Any]) -> str:
    """A selected row in words: "lora lr=0.002: 81.50 ± 1.20 (95% CI, n=3)"."""
    ci = row.get("ci95_x100")
    spread = (
        f" ± {ci:.2f} (95% CI, n={row['n']})" if ci is not None and not pd.isna(ci) else f" (n={row['n']})"
    )
    return f"{row['variant']} {row['hparams']}: {row['mean_x100']:.2f}{spread}"


def selected_lrs(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """task -> variant -> the selected lr, from a tuned table (one model and budget per task)."""
    rows = table[(table["task"] != AVG_TASK) & table["lr"].notna()]
    clash = rows[rows.duplicated(["task", "variant"], keep=False)]
    if len(clash):
        raise ValueError(
            "several tuned rows per (task, variant) (models or budgets differ): "
            + ", ".join(sorted({f"{t}/{v}" for t, v in zip(clash["task"], clash["variant"], strict=True)}))
        )
    out: dict[str, dict[str, float]] = {}
    for task, variant, lr in zip(rows["task"], rows["variant"], rows["lr"], strict=True):
        out.setdefault(task, {})[variant] = float(lr)
    return {t: dict(sorted(v.items())) for t, v in sorted(out.items())}
