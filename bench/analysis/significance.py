"""Which methods can be told apart, and the verdict: the best method, those tied with it, the cheapest.

Per task (``mark_ties``): Welch's t-test (``scipy.stats.ttest_ind``, unequal variances) of each selected
row's test scores over seeds against the best row's; a row is tied with the best when p >= ALPHA. Over
three or more tasks (``friedman``): the methods' average rank over the tasks they all ran, the Friedman
test (``scipy.stats.friedmanchisquare``) and the Nemenyi post-hoc test (``scikit_posthocs``), as Demšar
(JMLR 7, 2006) recommends for comparing several methods over several data sets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scikit_posthocs
from scipy import stats

from bench.analysis.selection import AVG_TASK, sort_tasks

ALPHA = 0.05
CHEAPEST_BY = {
    "trainable_params": "trainable parameters",
    "peak_memory_mb": "peak memory",
    "train_time_s": "train time",
}


def welch_p(a: list[float], b: list[float]) -> float:
    """Two-sided p-value of Welch's t-test; nan when either side has fewer than 2 scores. Two constant
    samples are tied when equal (p 1) and apart when not (p 0)."""
    if len(a) < 2 or len(b) < 2:
        return math.nan
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return 1.0 if a[0] == b[0] else 0.0
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def mark_ties(table: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """Add ``p_vs_best`` and ``tied`` (True for each task's best row and the rows not significantly
    worse; None when a side has fewer than 2 seeds) to a tuned table (``bench.analysis.selection.tuned``)."""
    out = table.assign(p_vs_best=math.nan, tied=None).astype({"tied": object})
    for task, idx in out.groupby("task").groups.items():
        if task == AVG_TASK:
            continue
        rows = out.loc[idx].dropna(subset=["mean_x100"])
        if rows.empty:
            continue
        best = rows["mean_x100"].idxmax()
        for i in rows.index:
            p = 1.0 if i == best else welch_p(rows.at[best, "scores_x100"], rows.at[i, "scores_x100"])
            out.at[i, "p_vs_best"] = p
            out.at[i, "tied"] = None if math.isnan(p) else bool(p >= alpha)
    return out


@dataclass
class Friedman:
    """The methods compared over the same tasks."""

    tasks: list[str]
    scores: pd.DataFrame  # task x variant: the selected test mean
    avg_rank: pd.Series  # variant -> average rank (1 = best), best first
    statistic: float
    p: float
    nemenyi: pd.DataFrame  # variant x variant: Nemenyi p-values


def friedman(table: pd.DataFrame) -> Friedman | None:
    """The Friedman and Nemenyi tests over the variants that ran every task of the table (one model);
    None with fewer than 3 tasks or 3 such variants."""
    rows = table[table["task"] != AVG_TASK].dropna(subset=["mean_x100"])
    scores = rows.pivot_table(index="task", columns="variant", values="mean_x100", aggfunc="first")
    scores = scores.dropna(axis=1)
    if len(scores) < 3 or scores.shape[1] < 3 or rows["model"].nunique() != 1:
        return None
    ranks = scores.rank(axis=1, ascending=False, method="average").mean().sort_values()
    statistic, p = stats.friedmanchisquare(*(scores[c].to_numpy() for c in scores.columns))
    nemenyi = scikit_posthocs.posthoc_nemenyi_friedman(scores.to_numpy())
    nemenyi.index = nemenyi.columns = scores.columns
    return Friedman(sort_tasks(scores.index), scores, ranks, float(statistic), float(p), nemenyi)


def cheapest(rows: pd.DataFrame) -> dict[str, str]:
    """Per cost column of CHEAPEST_BY: the variant with the lowest value among ``rows``."""
    out = {}
    for col, what in CHEAPEST_BY.items():
        values = rows[col].dropna() if col in rows else pd.Series(dtype=float)
        if len(values):
            out[what] = rows.loc[values.idxmin(), "variant"]
    return out


def task_verdicts(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Per task of a table marked by ``mark_ties``: best, tied (the others not told apart), cheapest of
    those by each cost, untested (variants with too few seeds to test), and the chance score."""
    verdicts = []
    for task in sort_tasks(table["task"][table["task"] != AVG_TASK]):
        rows = table[(table["task"] == task)].dropna(subset=["mean_x100"])
        if rows.empty:
            continue
        best = rows.loc[rows["mean_x100"].idxmax()]
        tied = rows[rows["tied"].eq(True) & (rows.index != best.name)]
        verdicts.append(
            {
                "task": task,
                "best": best.to_dict(),
                "tied": tied["variant"].tolist(),
                "cheapest": cheapest(pd.concat([best.to_frame().T, tied])),
                "untested": rows[rows["tied"].isna()]["variant"].tolist(),
                "chance_x100": best.get("chance_x100"),
            }
        )
    return verdicts


def overall_verdict(table: pd.DataFrame, test: Friedman | None) -> dict[str, Any] | None:
    """Over all tasks: the best average rank, the variants the Nemenyi test cannot tell from it, and the
    cheapest of those by each cost (mean over the tasks)."""
    if test is None:
        return None
    best = test.avg_rank.index[0]
    tied = [v for v in test.avg_rank.index[1:] if test.nemenyi.at[best, v] >= ALPHA]
    means = table[table["task"].isin(test.tasks)].groupby("variant")[list(CHEAPEST_BY)].mean()
    pool = means.loc[[best, *tied]].reset_index()
    return {"best": best, "tied": tied, "cheapest": cheapest(pool), "friedman": test}
