"""GLUE metrics against hand-computed values."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from bench.config.schemas import TaskConfig
from bench.inputs.metrics import (
    accuracy,
    compute_metrics,
    dev_metric,
    f1,
    matthews_correlation,
    metric_names,
    pearson,
    predictions,
    selection_key,
    spearmanr,
)


def task(**kw) -> TaskConfig:
    base = dict(
        name="t",
        text_fields=["sentence"],
        num_labels=2,
        metrics=["accuracy", "f1"],
        main_metric="accuracy",
        eval_splits={"validation": ""},
    )
    return TaskConfig(**{**base, **kw})


MNLI = task(
    name="mnli",
    num_labels=3,
    metrics=["accuracy"],
    main_metric="accuracy_m",
    eval_splits={"validation_matched": "m", "validation_mismatched": "mm"},
)
STSB = task(name="stsb", num_labels=1, metrics=["pearson", "spearmanr"], main_metric="pearson")


def test_accuracy():
    assert accuracy(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0])) == 0.75


def test_f1_is_binary_on_the_positive_class():
    # TP 2, FP 1, FN 1: precision 2/3, recall 2/3
    assert f1(np.array([1, 1, 0, 1, 0]), np.array([1, 0, 0, 1, 1])) == pytest.approx(2 / 3)
    # Swapping the classes changes it: TP 1, FP 1, FN 1 -> 1/2
    assert f1(np.array([0, 0, 1, 0, 1]), np.array([0, 1, 1, 0, 0])) == pytest.approx(1 / 2)


def test_matthews_correlation():
    # TP 1, TN 2, FP 1, FN 0: (1*2 - 1*0) / sqrt(2 * 1 * 3 * 2)
    assert matthews_correlation(np.array([1, 1, 0, 0]), np.array([1, 0, 0, 0])) == pytest.approx(
        2 / math.sqrt(12)
    )
    assert matthews_correlation(np.array([1, 0, 1]), np.array([0, 1, 0])) == pytest.approx(-1.0)
    assert matthews_correlation(np.array([1, 1, 1]), np.array([0, 1, 0])) == 0.0


def test_pearson():
    # cov 3, var 2 and 42/9: r = 3 / sqrt(2 * 42 / 9) = 9 / sqrt(84)
    assert pearson(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0])) == pytest.approx(9 / math.sqrt(84))
    assert pearson(np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0])) == pytest.approx(-1.0)


def test_spearmanr():
    # rank differences 0, -1, 1, 0: rho = 1 - 6 * 2 / (4 * 15)
    assert spearmanr(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 3.0, 2.0, 4.0])) == pytest.approx(0.8)
    # monotone but not linear: Spearman 1, Pearson below 1
    x, y = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 4.0, 9.0, 100.0])
    assert spearmanr(x, y) == pytest.approx(1.0)
    assert pearson(x, y) < 0.9


def test_correlations_of_constant_predictions_are_zero_not_nan():
    assert pearson(np.zeros(4), np.array([1.0, 2.0, 3.0, 4.0])) == 0.0
    assert spearmanr(np.ones(4), np.array([1.0, 2.0, 3.0, 4.0])) == 0.0


def test_predictions_argmax_and_regression():
    logits = np.array([[0.1, 2.0], [3.0, -1.0], [0.0, 0.5]])
    np.testing.assert_array_equal(predictions(logits, 2), [1, 0, 1])
    np.testing.assert_array_equal(predictions(np.array([[1.5], [2.5]]), 1), [1.5, 2.5])
    with pytest.raises(ValueError, match=r"shape \[n, 3\], got \[3, 2\]"):
        predictions(logits, 3)


def test_compute_metrics_binary():
    logits = np.array([[2.0, 0.0], [0.0, 2.0], [0.0, 2.0], [2.0, 0.0]])
    out = compute_metrics(task(), {"validation": (logits, np.array([0, 1, 0, 1]))})
    assert out == {"test/accuracy": 0.5, "test/f1": 0.5}
    assert all(type(v) is float for v in out.values())


def test_compute_metrics_keys_dev_and_test_by_role():
    logits = np.array([[2.0, 0.0], [0.0, 2.0], [0.0, 2.0], [2.0, 0.0]])
    outputs = {"dev": (logits, np.array([0, 1, 1, 0])), "validation": (logits, np.array([0, 1, 0, 1]))}
    assert compute_metrics(task(), outputs) == {
        "dev/accuracy": 1.0,
        "dev/f1": 1.0,
        "test/accuracy": 0.5,
        "test/f1": 0.5,
    }


def test_compute_metrics_mnli_matched_and_mismatched():
    eye = np.eye(3)
    outputs = {
        "validation_matched": (eye[[0, 1, 2, 2]], np.array([0, 1, 2, 0])),  # 3 of 4
        "validation_mismatched": (eye[[2, 2]], np.array([0, 2])),  # 1 of 2
    }
    assert compute_metrics(MNLI, outputs) == {"test/accuracy_m": 0.75, "test/accuracy_mm": 0.5}
    assert metric_names(MNLI) == ["accuracy_m", "accuracy_mm"]
    dev = compute_metrics(MNLI, {"dev": (eye[[0, 1]], np.array([0, 0]))})
    assert dev == {"dev/accuracy": 0.5}  # the dev set has no suffix


def test_compute_metrics_regression_logits_n_by_1():
    logits = np.array([[1.0], [2.0], [3.0]], dtype=np.float32)
    out = compute_metrics(STSB, {"validation": (logits, np.array([1.0, 2.0, 4.0]))})
    assert out["test/pearson"] == pytest.approx(9 / math.sqrt(84), rel=1e-6)
    assert out["test/spearmanr"] == pytest.approx(1.0)
    assert set(out) == {"test/pearson", "test/spearmanr"}


def test_compute_metrics_errors():
    with pytest.raises(
        ValueError, match="split 'test' is not an eval split of task 't'; eval splits: dev, validation"
    ):
        compute_metrics(task(), {"test": (np.eye(2), np.array([0, 1]))})
    with pytest.raises(ValueError, match="3 predictions for 2 labels"):
        compute_metrics(task(), {"validation": (np.eye(3)[:, :2], np.array([0, 1]))})
    with pytest.raises(ValueError, match="unknown metric.*acc.*available: accuracy, f1"):
        compute_metrics(task(metrics=["acc"]), {"validation": (np.eye(2), np.array([0, 1]))})


def test_metrics_need_only_the_plain_task_values():
    """Any object with name, num_labels, metrics, main_metric and eval_splits will do (MetricTask)."""
    spec = SimpleNamespace(
        name="t", num_labels=2, metrics=["accuracy"], main_metric="accuracy_h", eval_splits={"held": "h"}
    )
    assert metric_names(spec) == ["accuracy_h"]
    assert compute_metrics(spec, {"held": (np.eye(2), np.array([0, 0]))}) == {"test/accuracy_h": 0.5}
    assert compute_metrics(spec, {"dev": (np.eye(2), np.array([0, 0]))}) == {"dev/accuracy": 0.5}
    assert selection_key(spec, "dev") == "dev/accuracy"


def test_dev_metric_and_selection_key():
    """The dev set selects on the main metric without the test split's suffix; select_on=test on it."""
    spec = SimpleNamespace(
        name="mnli",
        num_labels=3,
        metrics=["accuracy"],
        main_metric="accuracy_m",
        eval_splits={"validation_matched": "m", "validation_mismatched": "mm"},
    )
    assert dev_metric(spec) == dev_metric(MNLI) == "accuracy"
    assert selection_key(spec, "dev") == "dev/accuracy"
    assert selection_key(spec, "test") == "test/accuracy_m"
    assert dev_metric(STSB) == "pearson" and selection_key(STSB, "test") == "test/pearson"
    assert dev_metric(task(main_metric="f1")) == "f1"
