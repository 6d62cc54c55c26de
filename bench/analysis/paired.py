"""The paired bootstrap over test examples and seeds: each method's score distribution, its 95% CI, and
the p-value of its gap to the task's best, with Holm's correction across the methods compared.

One resample draws the test examples with replacement (the same indices for every method of the task:
the comparison is paired on examples) and, for each method apart, its seeds with replacement; a method's
resampled score is the mean over its drawn seeds of the metric on the drawn examples. So both sources of
noise, test sampling and training, are in the spread (Efron & Tibshirani, An Introduction to the
Bootstrap, 1993; the paired bootstrap for NLP: Koehn, EMNLP 2004; Dror et al., "The Hitchhiker's Guide to
Testing Statistical Significance in NLP", ACL 2018). The CI is the percentile interval of the resampled
scores. The p-value of a gap is two-sided, from inverting the percentile interval of the paired
difference: twice the smaller share of resamples on either side of 0, +1 smoothed (never 0). Holm's
step-down adjustment (Holm, Scand. J. Statistics 6, 1979) controls the family-wise error over the methods
compared with the best.

Metrics whose sufficient statistics are sums over examples (accuracy, binary F1, Matthews correlation,
Pearson correlation) are resampled as one matrix product of the resampling counts; any other metric of
``bench.inputs.metrics.METRICS`` is computed on each resample (FALLBACK_RESAMPLES of them).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bench.inputs.metrics import METRICS

RESAMPLES = 2000
FALLBACK_RESAMPLES = 200  # a metric computed per resample (no sum form) is slower: fewer resamples
SEED = 0  # every resample of every task starts from this seed: the same numbers on every call
CONFIDENCE = 0.95

Run = tuple[np.ndarray, np.ndarray]  # one run's (predictions, labels), aligned on the task's test examples


def _accuracy_parts(preds: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return (preds == labels)[:, None].astype(np.float64)


def _accuracy(sums: np.ndarray, n: int) -> np.ndarray:
    return sums[..., 0] / n


def _f1_parts(preds: np.ndarray, labels: np.ndarray) -> np.ndarray:
    pos, true = preds == 1, labels == 1
    return np.stack([pos & true, pos & ~true, ~pos & true], axis=1).astype(np.float64)


def _f1(sums: np.ndarray, n: int) -> np.ndarray:
    tp, fp, fn = sums[..., 0], sums[..., 1], sums[..., 2]
    den = 2 * tp + fp + fn
    return np.divide(2 * tp, den, out=np.zeros_like(den), where=den > 0)


def _confusion_parts(preds: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    out = np.zeros((len(labels), classes * classes))
    out[np.arange(len(labels)), labels.astype(int) * classes + preds.astype(int)] = 1.0
    return out


def _matthews(sums: np.ndarray, n: int) -> np.ndarray:
    """Matthews correlation from confusion counts (sklearn's multiclass formula; 0 when undefined)."""
    k = int(round(np.sqrt(sums.shape[-1])))
    cm = sums.reshape(*sums.shape[:-1], k, k)
    t, p = cm.sum(-1), cm.sum(-2)
    c, s = np.trace(cm, axis1=-2, axis2=-1), cm.sum((-2, -1))
    cov = c * s - (t * p).sum(-1)
    den = np.sqrt((s**2 - (p * p).sum(-1)) * (s**2 - (t * t).sum(-1)))
    return np.divide(cov, den, out=np.zeros_like(cov), where=den > 0)


def _pearson_parts(preds: np.ndarray, labels: np.ndarray) -> np.ndarray:
    x, y = preds.astype(np.float64), labels.astype(np.float64)
    return np.stack([x, y, x * x, y * y, x * y], axis=1)


def _pearson(sums: np.ndarray, n: int) -> np.ndarray:
    sx, sy, sxx, syy, sxy = (sums[..., i] for i in range(5))
    cov, vx, vy = n * sxy - sx * sy, n * sxx - sx * sx, n * syy - sy * sy
    den = np.sqrt(np.clip(vx, 0, None) * np.clip(vy, 0, None))
    return np.divide(cov, den, out=np.zeros_like(cov), where=den > 1e-12 * n * n)


# metric -> (per-example parts of a run, the metric from the parts' sums over a resample)
SUM_FORMS: dict[str, tuple[Callable[..., np.ndarray], Callable[[np.ndarray, int], np.ndarray]]] = {
    "accuracy": (_accuracy_parts, _accuracy),
    "f1": (_f1_parts, _f1),
    "matthews_correlation": (_confusion_parts, _matthews),
    "pearson": (_pearson_parts, _pearson),
}


def run_scores(metric: str, runs: list[Run], counts: np.ndarray) -> np.ndarray:
    """The metric of each run on each resample: (resamples, runs); ``counts`` (resamples, examples)
    says how often each example is drawn."""
    n = int(counts[0].sum())
    if metric in SUM_FORMS:
        parts, score = SUM_FORMS[metric]
        extra = {}
        if metric == "matthews_correlation":
            extra["classes"] = int(max(max(p.max(), y.max()) for p, y in runs)) + 1
        blocks = [parts(p, y, **extra) for p, y in runs]
        sums = counts @ np.concatenate(blocks, axis=1)  # (resamples, runs * parts)
        return score(sums.reshape(len(counts), len(runs), -1), n)
    fn = METRICS[metric]
    index = [np.repeat(np.arange(counts.shape[1]), row.astype(int)) for row in counts]
    return np.array([[fn(p[i], y[i]) for p, y in runs] for i in index])


def bootstrap(metric: str, methods: dict[str, list[Run]], seed: int = SEED) -> dict[str, np.ndarray]:
    """Per method, its score on each paired resample (a 1-D array): examples drawn once for all methods,
    seeds drawn per method. Every run of every method must cover the same test examples, in one order."""
    rng = np.random.default_rng(seed)
    n = len(next(iter(methods.values()))[0][1])
    resamples = RESAMPLES if metric in SUM_FORMS else FALLBACK_RESAMPLES
    counts = rng.multinomial(n, np.full(n, 1 / n), size=resamples).astype(np.float64)
    flat = [run for runs in methods.values() for run in runs]
    per_run = run_scores(metric, flat, counts)
    out, start = {}, 0
    for name, runs in methods.items():
        s = len(runs)
        picks = rng.multinomial(s, np.full(s, 1 / s), size=resamples)  # seeds drawn per method
        out[name] = (per_run[:, start : start + s] * picks).sum(1) / s
        start += s
    return out


def percentile_ci(samples: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The percentile interval of the resampled scores."""
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def paired_p(best: np.ndarray, other: np.ndarray) -> float:
    """Two-sided p-value of the paired difference ``best - other`` over the resamples: twice the smaller
    share on either side of 0, +1 smoothed, at most 1."""
    diff = best - other
    below, above = int((diff <= 0).sum()), int((diff >= 0).sum())
    return min(1.0, 2 * (min(below, above) + 1) / (len(diff) + 1))


def holm(p: dict[str, float]) -> dict[str, float]:
    """Holm's step-down adjusted p-values: sorted ascending, the i-th (from 0) of m times (m - i), made
    monotone, at most 1."""
    order = sorted(p, key=p.get)
    m, running, out = len(order), 0.0, {}
    for i, name in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[name]))
        out[name] = running
    return out
