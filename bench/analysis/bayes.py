"""The Bayesian signed-rank test of each method against the best-ranked one over the tasks, with a region
of practical equivalence (Benavoli, Corani, Demšar and Zaffalon, "Time for a change: a tutorial for
comparing multiple classifiers through Bayesian analysis", JMLR 18, 2017; the ``baycomp`` package).

On the per-task mean test scores (×100) of a method and of the best, the posterior gives P(better): the
method beats the best by more than ROPE_X100, P(equivalent): the two are within it, and P(worse). The three
sum to 1. Seeded: the same probabilities on every call.
"""

from __future__ import annotations

import warnings

import pandas as pd
from baycomp import SignedRankTest

# One point of the score ×100 (0.01 of accuracy): below the test-sampling standard error of a gap on a
# 1,000 to 2,000 example test set (1.5 to 2 points), so a smaller gap is not one a reader can act on.
ROPE_X100 = 1.0
SAMPLES = 20_000  # posterior draws: the probabilities to about ±0.005
SEED = 0
COLUMNS = ["p_better", "p_equivalent", "p_worse"]


def versus_best(scores: pd.DataFrame, best: str, rope: float = ROPE_X100) -> pd.DataFrame:
    """Per variant other than ``best`` (columns of ``scores``, task x variant, ×100): P(better),
    P(equivalent), P(worse) than ``best`` on a new task."""
    rows = {}
    for variant in scores.columns:
        if variant == best:
            continue
        with warnings.catch_warnings():  # baycomp warns about few data sets; the report states the count
            warnings.simplefilter("ignore")
            better, same, worse = SignedRankTest.probs(
                scores[variant].to_numpy(float),
                scores[best].to_numpy(float),
                rope,
                nsamples=SAMPLES,
                random_state=SEED,
            )
        rows[variant] = (float(better), float(same), float(worse))
    return pd.DataFrame.from_dict(rows, orient="index", columns=COLUMNS)
