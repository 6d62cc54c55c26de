"""bench.analysis.bayes: the Bayesian signed-rank test against the best (baycomp), per variant."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.analysis.bayes import COLUMNS, versus_best

SCORES = pd.DataFrame(  # task x variant, x100: close ties best within a point; low trails by 10
    {
        "best": [80.0, 75.0, 90.0, 70.0, 85.0, 60.0, 88.0, 77.0],
        "close": [79.8, 75.3, 89.9, 70.2, 84.7, 60.1, 88.2, 76.8],
        "low": [70.0, 64.0, 81.0, 58.0, 76.0, 50.0, 79.0, 66.0],
        "high": [90.0, 85.0, 99.0, 80.0, 95.0, 70.0, 97.0, 87.0],
    },
    index=[f"t{i}" for i in range(8)],
)


def test_probabilities_sum_to_one_and_favour_the_better_method():
    probs = versus_best(SCORES, "best")
    assert probs.index.tolist() == ["close", "low", "high"] and probs.columns.tolist() == COLUMNS
    assert probs.sum(axis=1).to_numpy() == pytest.approx([1.0, 1.0, 1.0])
    assert probs.at["low", "p_worse"] > 0.95
    assert probs.at["high", "p_better"] > 0.95
    assert probs.at["close", "p_equivalent"] > 0.95


def test_reproducible_across_calls():
    pd.testing.assert_frame_equal(versus_best(SCORES, "best"), versus_best(SCORES, "best"))


def test_the_rope_decides_what_is_equivalent():
    wide = versus_best(SCORES, "best", rope=20.0)
    assert wide.at["low", "p_equivalent"] > 0.95  # a 10-point gap inside a 20-point rope
