"""bench.inputs.vader.split_indices with task.test_fraction: a larger test part, validation as ever, and
unset exactly the seeded 80/10/10 split."""

from __future__ import annotations

import numpy as np
import pytest

from bench.inputs import vader

ROWS = (10605, 4200, 3708, 5190, 7, 10)  # the four corpora, and small sizes at the edges


def default_split(n: int, seed: int) -> dict[str, list[int]]:
    """The 80/10/10 split, written out: validation the first n // 10 of the seeded permutation, test the
    next n // 10, train the rest."""
    order = np.random.default_rng(seed).permutation(n)
    k = n // 10
    return {
        "train": sorted(order[2 * k :].tolist()),
        "validation": sorted(order[:k].tolist()),
        "test": sorted(order[k : 2 * k].tolist()),
    }


@pytest.mark.parametrize("n", ROWS)
@pytest.mark.parametrize("seed", [0, 1])
def test_unset_is_the_80_10_10_split(n, seed):
    parts = vader.split_indices(n, seed)
    assert {k: v.tolist() for k, v in parts.items()} == default_split(n, seed)


@pytest.mark.parametrize("n", ROWS)
@pytest.mark.parametrize("fraction", [0.05, 0.4, 0.89])
def test_a_test_fraction_sizes_the_test_part_and_train_keeps_the_rest(n, fraction):
    parts = vader.split_indices(n, 0, fraction)
    train, val, test = (set(parts[k].tolist()) for k in ("train", "validation", "test"))
    assert (len(val), len(test)) == (n // 10, int(n * fraction))
    assert not (train & val or train & test or val & test) and train | val | test == set(range(n))
    assert train, "train keeps at least one row below MAX_TEST_FRACTION"
    default = default_split(n, 0)
    assert sorted(val) == default["validation"]  # validation does not move
    assert set(default["test"]) <= test or fraction < 0.1  # a larger test part holds the default's rows
    assert all(np.all(np.diff(parts[k]) > 0) for k in parts)  # sorted


def test_forty_percent_of_the_corpora():
    assert [len(vader.split_indices(n, 0, 0.4)["test"]) for n in ROWS[:4]] == [4242, 1680, 1483, 2076]
