"""bench.analysis.paired: the paired bootstrap over test examples and seeds, its percentile CI, the paired
p-value and Holm's adjustment, on known inputs."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.paired_runs import flip

from bench.analysis import paired
from bench.inputs.metrics import METRICS

LABELS = np.random.default_rng(0).integers(0, 2, 2000)


def seeds(wrong: float, first: int, n: int = 3, labels: np.ndarray = LABELS) -> list[paired.Run]:
    return [(flip(labels, wrong, first + s), labels) for s in range(n)]


def test_a_method_identical_to_the_best_is_tied_and_a_clearly_worse_one_is_not():
    best = seeds(0.15, 0)
    runs = {"best": best, "same": list(best), "worse": seeds(0.25, 10)}
    samples = paired.bootstrap("accuracy", runs)
    raw = {v: paired.paired_p(samples["best"], samples[v]) for v in ("same", "worse")}
    adjusted = paired.holm(raw)
    assert adjusted["same"] > 0.5
    assert adjusted["worse"] < 0.05


def test_paired_p_is_two_sided_and_never_zero():
    a, b = np.array([0.8, 0.9, 1.0]), np.array([0.1, 0.2, 0.3])
    assert paired.paired_p(a, b) == paired.paired_p(b, a) == pytest.approx(2 / 4)
    assert paired.paired_p(a, a) == 1.0


def test_holm_matches_a_hand_example():
    # sorted: 0.01 x 4 = 0.04; 0.02 x 3 = 0.06; 0.03 x 2 = 0.06 (monotone); 0.5 x 1 = 0.5
    adjusted = paired.holm({"a": 0.03, "b": 0.01, "c": 0.5, "d": 0.02})
    assert adjusted == pytest.approx({"b": 0.04, "d": 0.06, "a": 0.06, "c": 0.5})
    assert paired.holm({"a": 0.4, "b": 0.6}) == pytest.approx({"a": 0.8, "b": 0.8})  # capped by order
    assert paired.holm({"a": 0.9, "b": 0.8}) == {"a": 1.0, "b": 1.0}  # at most 1


def test_ci_contains_the_mean_and_widens_with_fewer_examples():
    runs = seeds(0.2, 0)
    mean = np.mean([(p == y).mean() for p, y in runs])
    low, high = paired.percentile_ci(paired.bootstrap("accuracy", {"m": runs})["m"])
    assert low < mean < high
    few = [(p[:200], y[:200]) for p, y in runs]
    few_mean = np.mean([(p == y).mean() for p, y in few])
    few_low, few_high = paired.percentile_ci(paired.bootstrap("accuracy", {"m": few})["m"])
    assert few_low < few_mean < few_high
    assert few_high - few_low > 2 * (high - low)  # 10x fewer examples: about 3x wider


def test_reproducible_across_calls():
    runs = {"a": seeds(0.2, 0), "b": seeds(0.22, 5)}
    first, again = paired.bootstrap("accuracy", runs), paired.bootstrap("accuracy", runs)
    for v in runs:
        np.testing.assert_array_equal(first[v], again[v])
    assert not np.array_equal(first["a"], paired.bootstrap("accuracy", runs, seed=1)["a"])


@pytest.mark.parametrize("metric", ["accuracy", "f1", "matthews_correlation", "pearson"])
def test_sum_forms_equal_the_metrics_on_the_full_sample(metric):
    rng = np.random.default_rng(3)
    if metric == "pearson":
        labels = rng.normal(size=300)
        runs = [(labels + rng.normal(size=300), labels), (rng.normal(size=300), labels)]
    else:
        labels = rng.integers(0, 3 if metric == "matthews_correlation" else 2, 300)
        runs = [(flip(labels % 2, 0.3, 1), labels), (rng.integers(0, 2, 300), labels)]
    once = np.ones((1, len(labels)))  # every example drawn once: the plain metric
    got = paired.run_scores(metric, runs, once)[0]
    np.testing.assert_allclose(got, [METRICS[metric](p, y) for p, y in runs], atol=1e-12)


def test_a_metric_without_a_sum_form_is_computed_per_resample():
    rng = np.random.default_rng(4)
    labels = rng.normal(size=100)
    runs = [(labels + rng.normal(size=100), labels)]
    np.testing.assert_allclose(
        paired.run_scores("spearmanr", runs, np.ones((1, 100)))[0], [METRICS["spearmanr"](*runs[0])]
    )
    samples = paired.bootstrap("spearmanr", {"m": runs})["m"]
    assert len(samples) == paired.FALLBACK_RESAMPLES and np.ptp(samples) > 0
