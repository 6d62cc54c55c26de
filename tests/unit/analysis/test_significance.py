"""Significance (bench.analysis.significance): Welch's t-test and ties per task, the Friedman and Nemenyi
tests over
tasks, each checked against scipy / scikit-posthocs on known inputs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scikit_posthocs
from scipy import stats

from bench.analysis.significance import ALPHA, WELCH, cheapest, friedman, mark_ties, overall_verdict, welch_p

SAMPLES = [
    ([90.0, 92.0, 94.0], [91.0, 95.0]),
    ([80.1, 82.3, 79.8, 85.0], [70.2, 71.0, 69.5]),
    ([1.0, 2.0], [1.5, 2.5, 3.5, 4.5, 5.5]),
    ([70.0, 70.0, 70.0], [69.0, 71.0]),  # one constant side: still a t-test
]


@pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")  # scipy, on the constant side
@pytest.mark.parametrize("a, b", SAMPLES)
def test_welch_p_is_scipys_unequal_variance_t_test(a, b):
    expected = stats.ttest_ind(a, b, equal_var=False).pvalue
    assert welch_p(a, b) == pytest.approx(expected, rel=1e-12)
    assert welch_p(b, a) == pytest.approx(expected, rel=1e-12)  # two-sided


def test_welch_p_of_constant_samples():
    assert welch_p([80.0, 80.0, 80.0], [80.0, 80.0]) == 1.0  # equal: tied
    assert welch_p([80.0, 80.0], [81.0, 81.0, 81.0]) == 0.0  # different: apart


@pytest.mark.parametrize("a, b", [([80.0], [80.0, 81.0]), ([80.0, 81.0], [79.0]), ([], [1.0, 2.0])])
def test_welch_p_needs_two_scores_a_side(a, b):
    assert math.isnan(welch_p(a, b))


def tuned_rows(rows: list[tuple[str, str, list[float]]], model: str = "minilm") -> pd.DataFrame:
    """A tuned table's columns that significance reads: (task, variant, test scores x100) per row."""
    return pd.DataFrame(
        [
            {
                "task": task,
                "variant": variant,
                "model": model,
                "scores_x100": scores,
                "mean_x100": np.mean(scores) if scores else math.nan,
            }
            for task, variant, scores in rows
        ]
    )


def test_mark_ties_against_the_tasks_best():
    best, close, apart, single = [85.0, 86.0, 87.0], [80.0, 86.0, 89.0], [70.0, 70.5, 71.0], [90.0]
    table = mark_ties(
        tuned_rows(
            [
                ("t", "close", close),  # mean 85: within the noise of the best
                ("t", "best", best),  # mean 86
                ("t", "apart", apart),
                ("t", "single", [84.0]),  # one seed: no test
                ("t", "failed", []),  # no completed run: nothing to mark
                ("u", "single", single),  # another task, its own best
            ]
        )
    ).set_index(["task", "variant"])
    assert table.loc[("t", "best"), ["p_vs_best", "tied"]].tolist() == [1.0, True]
    p_close = stats.ttest_ind(best, close, equal_var=False).pvalue
    assert p_close >= ALPHA and table.loc[("t", "close"), "p_vs_best"] == pytest.approx(p_close)
    assert table.loc[("t", "close"), "tied"] is True
    p_apart = stats.ttest_ind(best, apart, equal_var=False).pvalue
    assert p_apart < ALPHA and table.loc[("t", "apart"), "p_vs_best"] == pytest.approx(p_apart)
    assert table.loc[("t", "apart"), "tied"] is False
    assert math.isnan(table.loc[("t", "single"), "p_vs_best"]) and table.loc[("t", "single"), "tied"] is None
    assert math.isnan(table.loc[("t", "failed"), "p_vs_best"]) and table.loc[("t", "failed"), "tied"] is None
    assert table.loc[("u", "single"), "tied"] is True  # the best of its task, compared with nobody
    assert set(table["tie_test"].dropna()) == {WELCH}  # no predictions: Welch's t-test, and said so


def test_mark_ties_leaves_the_average_rows_alone():
    table = tuned_rows([("t", "a", [80.0, 81.0]), ("t", "b", [70.0, 70.5]), ("avg", "a", [80.5])])
    marked = mark_ties(table)
    avg = marked[marked["task"] == "avg"].iloc[0]
    assert math.isnan(avg["p_vs_best"]) and avg["tied"] is None


# -- Friedman and Nemenyi over tasks -------------------------------------------------------------------------

# task -> variant -> selected test mean; the ranks per task (1 = best) are in the comments
SCORES = {
    "t1": {"a": 90.0, "b": 85.0, "c": 80.0},  # a 1, b 2, c 3
    "t2": {"a": 88.0, "b": 89.0, "c": 70.0},  # b 1, a 2, c 3
    "t3": {"a": 70.0, "b": 60.0, "c": 65.0},  # a 1, c 2, b 3
    "t4": {"a": 75.0, "b": 75.0, "c": 50.0},  # a, b 1.5 (a tie), c 3
}
AVG_RANK = {"a": (1 + 2 + 1 + 1.5) / 4, "b": (2 + 1 + 3 + 1.5) / 4, "c": (3 + 3 + 2 + 3) / 4}


def score_table(scores: dict[str, dict[str, float]], model: str = "minilm") -> pd.DataFrame:
    return tuned_rows([(t, v, [s]) for t, by in scores.items() for v, s in by.items()], model)


def test_friedman_matches_scipy_and_scikit_posthocs():
    table = score_table(SCORES)
    table = pd.concat([table, tuned_rows([("avg", "a", [80.0]), ("avg", "b", [77.0])])])  # ignored
    result = friedman(table)
    assert result is not None
    assert result.tasks == ["t1", "t2", "t3", "t4"]
    columns = {v: [SCORES[t][v] for t in result.tasks] for v in "abc"}
    statistic, p = stats.friedmanchisquare(*columns.values())
    assert (result.statistic, result.p) == (pytest.approx(statistic), pytest.approx(p))
    assert result.avg_rank.index.tolist() == ["a", "b", "c"]  # best first
    assert result.avg_rank.to_dict() == pytest.approx(AVG_RANK)
    expected = scikit_posthocs.posthoc_nemenyi_friedman(
        np.array([[SCORES[t][v] for v in "abc"] for t in result.tasks])
    )
    assert result.nemenyi.index.tolist() == result.nemenyi.columns.tolist() == ["a", "b", "c"]
    np.testing.assert_allclose(result.nemenyi.to_numpy(), expected.to_numpy())
    assert result.scores.loc["t2", "b"] == 89.0


def test_friedman_compares_only_the_variants_that_ran_every_task():
    scores = {t: {**by, "d": 99.0} for t, by in SCORES.items() if t != "t3"} | {"t3": SCORES["t3"]}
    result = friedman(score_table(scores))
    assert result is not None and result.avg_rank.index.tolist() == ["a", "b", "c"]  # d has no t3
    assert result.statistic == pytest.approx(friedman(score_table(SCORES)).statistic)


def test_friedman_needs_three_tasks_three_variants_and_one_model():
    assert friedman(score_table({t: SCORES[t] for t in ("t1", "t2")})) is None
    assert friedman(score_table({t: {v: by[v] for v in "ab"} for t, by in SCORES.items()})) is None
    two_models = pd.concat([score_table(SCORES), score_table({"t1": {"a": 1.0}}, model="other")])
    assert friedman(two_models) is None


def test_the_overall_verdict_is_the_best_average_rank_and_those_nemenyi_cannot_tell_from_it():
    table = score_table(SCORES).assign(
        trainable_params=lambda t: t["variant"].map({"a": 1000, "b": 10, "c": 5}),
        peak_memory_mb=lambda t: t["variant"].map({"a": 900.0, "b": 1000.0, "c": 800.0}),
        train_time_s=lambda t: t["variant"].map({"a": 30.0, "b": 40.0, "c": 20.0}),
    )
    test = friedman(table)
    verdict = overall_verdict(table, test)
    tied = [v for v in ("b", "c") if test.nemenyi.at["a", v] >= ALPHA]
    assert (verdict["best"], verdict["tied"]) == ("a", tied)
    pool = ["a", *tied]
    costs = {
        "trainable parameters": {"a": 1000, "b": 10, "c": 5},
        "peak memory": {"a": 900, "b": 1000, "c": 800},
    }
    assert verdict["cheapest"]["trainable parameters"] == [min(pool, key=costs["trainable parameters"].get)]
    assert verdict["cheapest"]["peak memory"] == [min(pool, key=costs["peak memory"].get)]
    assert overall_verdict(table, None) is None


def test_cheapest_names_every_variant_within_the_tolerance_of_the_lowest_cost():
    rows = pd.DataFrame(
        {
            "variant": ["lora", "loraplus", "dora", "full"],
            "trainable_params": [73_728, 73_728, 75_264, 22_000_000],  # dora: 2% more, outside 1%
            "peak_memory_mb": [990.0, 1000.0, 1005.0, 1300.0],  # within 2% of 990: all but full
            "train_time_s": [40.0, 41.0, 50.0, 30.0],
        }
    )
    got = cheapest(rows)
    assert got["trainable parameters"] == ["lora", "loraplus"]
    assert got["peak memory"] == ["lora", "loraplus", "dora"]
    assert got["train time"] == ["full"]
