"""GLUE metrics computed offline with scikit-learn and scipy (``evaluate.load`` needs the Hub).

Names follow the GLUE convention (and the keys of Hugging Face's ``glue`` metric): ``accuracy``, ``f1``
(binary, positive class 1), ``matthews_correlation``, ``pearson``, ``spearmanr``. Values stay on the raw
scale: 0..1 for accuracy and F1, -1..1 for correlations. A split with a metric suffix (MNLI's ``m`` and
``mm``) reports ``accuracy_m`` and ``accuracy_mm``. A run's values are keyed by role: ``dev/accuracy``
(the dev set, which selects) and ``test/accuracy`` (the test splits, which are reported).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import numpy as np
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from bench.plural import plural

DEV, TEST = "dev", "test"  # the dev set's split name; the roles that prefix metric keys


class MetricTask(Protocol):
    """What the metrics need to know of a task (``bench.inputs.tasks.TaskConfig`` has it)."""

    name: str
    num_labels: int  # 1 means regression
    metrics: Sequence[str]
    main_metric: str
    eval_splits: Mapping[str, str]  # test split -> metric suffix


def accuracy(preds: np.ndarray, labels: np.ndarray) -> float:
    return float(accuracy_score(labels, preds))


def f1(preds: np.ndarray, labels: np.ndarray) -> float:
    """Binary F1 of the positive class (label 1), as GLUE reports it for MRPC and QQP."""
    return float(f1_score(labels, preds, average="binary", pos_label=1, zero_division=0.0))


def matthews_correlation(preds: np.ndarray, labels: np.ndarray) -> float:
    """Matthews correlation (CoLA); 0.0 when the predictions are constant."""
    return float(matthews_corrcoef(labels, preds))


def _correlation(fn, preds: np.ndarray, labels: np.ndarray) -> float:
    # Constant input has no correlation: report 0.0 (as matthews_corrcoef does) rather than nan, so that
    # "best epoch" comparisons stay well defined early in training.
    if np.ptp(preds) == 0 or np.ptp(labels) == 0:
        return 0.0
    return float(fn(preds, labels)[0])


def pearson(preds: np.ndarray, labels: np.ndarray) -> float:
    """Pearson correlation (STS-B); 0.0 when either side is constant."""
    return _correlation(stats.pearsonr, np.asarray(preds, np.float64), np.asarray(labels, np.float64))


def spearmanr(preds: np.ndarray, labels: np.ndarray) -> float:
    """Spearman rank correlation (STS-B); 0.0 when either side is constant."""
    return _correlation(stats.spearmanr, np.asarray(preds, np.float64), np.asarray(labels, np.float64))


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": accuracy,
    "f1": f1,
    "matthews_correlation": matthews_correlation,
    "pearson": pearson,
    "spearmanr": spearmanr,
}


def metric_key(metric: str, suffix: str) -> str:
    return f"{metric}_{suffix}" if suffix else metric


def metric_names(cfg: MetricTask) -> list[str]:
    """Every key ``compute_metrics`` reports for the task, e.g. ['accuracy_m', 'accuracy_mm']."""
    unknown = [m for m in cfg.metrics if m not in METRICS]
    if unknown:
        raise ValueError(
            f"unknown metric(s) {', '.join(unknown)} in task {cfg.name!r}; available: {', '.join(METRICS)}"
        )
    return [metric_key(m, suffix) for suffix in cfg.eval_splits.values() for m in cfg.metrics]


def dev_metric(cfg: MetricTask) -> str:
    """The dev set's counterpart of the main metric: its name without a test split's suffix."""
    for m in cfg.metrics:
        if cfg.main_metric in (metric_key(m, suffix) for suffix in cfg.eval_splits.values()):
            return m
    return cfg.main_metric


def selection_key(cfg: MetricTask, select_on: str) -> str:
    """The key whose best value picks a run's best evaluation: ``dev/<metric>``, or with the papers'
    convention (select_on test) the reported ``test/<main metric>`` itself."""
    return f"{DEV}/{dev_metric(cfg)}" if select_on == DEV else f"{TEST}/{cfg.main_metric}"


def chance(cfg: MetricTask, train_labels: np.ndarray, tests: dict[str, np.ndarray]) -> dict[str, float]:
    """The test metrics of a model that ignores its input: the majority class of train for every example
    (regression: the train mean, whose correlations are 0). ``tests``: test split -> labels."""
    train_labels = np.asarray(train_labels)
    if cfg.num_labels == 1:
        constant = np.full(cfg.num_labels, train_labels.mean())
    else:
        constant = np.eye(cfg.num_labels)[np.bincount(train_labels, minlength=cfg.num_labels).argmax()]
    return compute_metrics(cfg, {s: (np.tile(constant, (len(y), 1)), y) for s, y in tests.items()})


def predictions(logits: np.ndarray, num_labels: int) -> np.ndarray:
    """Class ids (argmax over the last axis), or the scores themselves for regression (num_labels 1)."""
    logits = np.asarray(logits)
    if num_labels == 1:
        return logits.reshape(-1).astype(np.float64)
    if logits.ndim != 2 or logits.shape[1] != num_labels:
        raise ValueError(f"expected logits of shape [n, {num_labels}], got {list(logits.shape)}")
    return logits.argmax(axis=-1)


def compute_metrics(cfg: MetricTask, outputs: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """The task's metrics on each evaluated split: ``dev/<metric>`` for the dev set (split ``dev``) and
    ``test/<metric>[_suffix]`` for each test split.

    ``outputs`` maps ``dev`` or a test split name (a key of ``cfg.eval_splits``) to (logits, labels);
    logits are [n, num_labels], or [n, 1] / [n] for regression.
    """
    metric_names(cfg)  # validates the metric names
    results: dict[str, float] = {}
    for split, (logits, labels) in outputs.items():
        if split != DEV and split not in cfg.eval_splits:
            raise ValueError(
                f"split {split!r} is not an eval split of task {cfg.name!r}; "
                f"eval splits: {DEV}, {', '.join(cfg.eval_splits)}"
            )
        preds = predictions(logits, cfg.num_labels)
        labels = np.asarray(labels).reshape(-1)
        if len(preds) != len(labels) or len(labels) == 0:
            raise ValueError(
                f"split {split!r}: {plural(len(preds), 'prediction')} for {plural(len(labels), 'label')}"
            )
        for m in cfg.metrics:
            key = f"{DEV}/{m}" if split == DEV else f"{TEST}/{metric_key(m, cfg.eval_splits[split])}"
            results[key] = METRICS[m](preds, labels)
    return results
