"""Which methods can be told apart, and the verdict: the best method, those tied with it, the cheapest.

Per task (``mark_ties``), each selected row is compared with the task's best (the highest test mean).
When every run of the task kept its test predictions, the test is the paired bootstrap over test examples
and seeds (``bench.analysis.paired``) with Holm's correction across the rows compared, and each row's 95%
CI is the bootstrap's percentile interval; otherwise (runs recorded without predictions) it is Welch's
t-test (``scipy.stats.ttest_ind``, unequal variances) of the rows' test scores over seeds, with the CI of
``bench.analysis.selection`` (Student's t over seeds). A row is tied with the best when its (adjusted)
p >= ALPHA; ``tie_test`` names the test behind each mark. Over three or more tasks (``friedman``): the
methods' average rank over the tasks they all ran, the Friedman test (``scipy.stats.friedmanchisquare``),
the Nemenyi post-hoc test (``scikit_posthocs``), as Demšar (JMLR 7, 2006) recommends for comparing
several methods over several data sets, and the Bayesian signed-rank test of each method against the
best-ranked one (``bench.analysis.bayes``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scikit_posthocs
from scipy import stats

from bench.analysis import paired
from bench.analysis.bayes import versus_best
from bench.analysis.run_predictions import task_runs
from bench.analysis.selection import AVG_TASK, sort_tasks

ALPHA = 0.05
PAIRED = "paired bootstrap + Holm"  # the tie_test of a task whose runs kept their test predictions
WELCH = "Welch t"  # the tie_test of a task without them
CHEAPEST_BY = {
    "trainable_params": "trainable parameters",
    "peak_memory_mb": "peak memory",
    "train_time_s": "train time",
}
# a cost within this fraction of the lowest ties with it: parameter counts are exact, memory and time vary
# by a few percent from run to run
CHEAP_WITHIN = {"trainable_params": 0.01, "peak_memory_mb": 0.02, "train_time_s": 0.05}


def welch_p(a: list[float], b: list[float]) -> float:
    """Two-sided p-value of Welch's t-test; nan when either side has fewer than 2 scores. Two constant
    samples are tied when equal (p 1) and apart when not (p 0)."""
    if len(a) < 2 or len(b) < 2:
        return math.nan
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return 1.0 if a[0] == b[0] else 0.0
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def mark_ties(table: pd.DataFrame, alpha: float = ALPHA, source: str | Path | None = None) -> pd.DataFrame:
    """Add ``p_vs_best``, ``tied`` (True for each task's best row and the rows not significantly worse;
    None when untested) and ``tie_test`` to a tuned table (``bench.analysis.selection.tuned``): per task
    the paired bootstrap + Holm when the runs under ``source`` kept their test predictions (which also
    sets ``ci95_x100``, ``ci_low_x100`` and ``ci_high_x100`` from the bootstrap), else Welch's t-test."""
    out = table.assign(p_vs_best=math.nan, tied=None, tie_test=None).astype({"tied": object})
    for column in ("ci_low_x100", "ci_high_x100"):
        if column not in out:
            out[column] = math.nan
    for task, idx in out.groupby("task").groups.items():
        if task == AVG_TASK:
            continue
        rows = out.loc[idx].dropna(subset=["mean_x100"])
        if rows.empty:
            continue
        found = task_runs(rows, Path(source)) if source is not None else None
        if found is None:
            welch_marks(out, rows, alpha)
        else:
            paired_marks(out, rows, *found, alpha)
    return out


def welch_marks(out: pd.DataFrame, rows: pd.DataFrame, alpha: float) -> None:
    """Mark ``rows`` (one task) in ``out`` by Welch's t-test against the best; None with fewer than 2
    seeds a side."""
    best = rows["mean_x100"].idxmax()
    for i in rows.index:
        p = 1.0 if i == best else welch_p(rows.at[best, "scores_x100"], rows.at[i, "scores_x100"])
        out.at[i, "p_vs_best"] = p
        out.at[i, "tied"] = None if math.isnan(p) else bool(p >= alpha)
        out.at[i, "tie_test"] = WELCH


def paired_marks(
    out: pd.DataFrame, rows: pd.DataFrame, metric: str, runs: dict[Any, list], alpha: float
) -> None:
    """Mark ``rows`` (one task) in ``out`` by the paired bootstrap against the best, Holm-adjusted over
    the rows compared, and set their bootstrap CIs (×100; ``ci95_x100``: half the interval's width)."""
    best = rows["mean_x100"].idxmax()
    samples = paired.bootstrap(metric, runs)
    raw = {i: paired.paired_p(samples[best], samples[i]) for i in rows.index if i != best}
    adjusted = paired.holm(raw) | {best: 1.0}
    for i in rows.index:
        low, high = (100 * v for v in paired.percentile_ci(samples[i]))
        out.loc[i, ["ci_low_x100", "ci_high_x100", "ci95_x100"]] = [low, high, (high - low) / 2]
        out.at[i, "p_vs_best"] = adjusted[i]
        out.at[i, "tied"] = bool(adjusted[i] >= alpha)
        out.at[i, "tie_test"] = PAIRED


@dataclass
class Friedman:
    """The methods compared over the same tasks."""

    tasks: list[str]
    scores: pd.DataFrame  # task x variant: the selected test mean
    avg_rank: pd.Series  # variant -> average rank (1 = best), best first
    statistic: float
    p: float
    nemenyi: pd.DataFrame  # variant x variant: Nemenyi p-values
    bayes: pd.DataFrame | None = None  # variant -> p_better, p_equivalent, p_worse vs the best-ranked


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
    bayes = versus_best(scores, ranks.index[0])
    return Friedman(sort_tasks(scores.index), scores, ranks, float(statistic), float(p), nemenyi, bayes)


def cheapest(rows: pd.DataFrame) -> dict[str, list[str]]:
    """Per cost column of CHEAPEST_BY: the variants whose value is the lowest among ``rows`` or within
    CHEAP_WITHIN of it (lora and loraplus train the same weights: both are named), lowest first."""
    out = {}
    for col, what in CHEAPEST_BY.items():
        values = rows[col].dropna().astype(float) if col in rows else pd.Series(dtype=float)
        if len(values):
            low = values.min()
            near = values[values <= low + CHEAP_WITHIN[col] * abs(low)].sort_values(kind="stable")
            out[what] = list(dict.fromkeys(rows.loc[near.index, "variant"]))
    return out


def task_verdicts(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Per task of a table marked by ``mark_ties``: best, tied (the others not told apart), cheapest of
    those by each cost, untested (variants with too few seeds to test), the chance score and the test."""
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
                "tie_test": best.get("tie_test"),
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


def tie_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Per variant of a table marked by ``mark_ties``: ``ties`` (tasks where it is the best or tied with
    it), ``tasks`` (tasks it has a score on) and the mean of each cost over those tasks; most ties first,
    then fewest trainable parameters."""
    rows = table[(table["task"] != AVG_TASK) & table["mean_x100"].notna()]
    costs = [c for c in ("trainable_params", "pct_trainable") if c in rows]
    out = rows.groupby("variant").agg(
        ties=("tied", lambda t: int(t.eq(True).sum())),
        tasks=("task", "nunique"),
        **{c: (c, "mean") for c in costs},
    )
    order = ["ties", *costs[:1]]
    return out.sort_values(order, ascending=[False, True][: len(order)], kind="stable")
