"""task.max_test_samples: it caps the test splits instead of max_eval_samples, which then caps dev alone;
unset, max_eval_samples caps both, choosing the same rows as ever."""

from __future__ import annotations

import numpy as np
import pytest

from bench.config.schemas import TaskConfig
from bench.inputs.tasks import load_task
from bench.run.checks import check_task

SIZES = {"train": 30, "validation": 40, "test": 50}


def local_task(tmp_path, **overrides) -> TaskConfig:
    """A local task of SIZES rows per split: dev is its validation file, test its test file."""
    for split, n in SIZES.items():
        rows = "".join(f"{split} sentence {i},{i % 2}\n" for i in range(n))
        (tmp_path / f"{split}.csv").write_text(f"sentence,label\n{rows}")
    return TaskConfig(
        name="t",
        source="local",
        text_fields=["sentence"],
        num_labels=2,
        metrics=["accuracy"],
        main_metric="accuracy",
        eval_splits={"test": ""},
        dev_split="validation",
        data_dir=str(tmp_path),
        **overrides,
    )


def chosen(n: int, k: int, seed: int) -> list[int]:
    """The rows a seeded subsample of k of n keeps (bench.inputs.tasks.subsample), in order."""
    return np.sort(np.random.default_rng(seed).permutation(n)[:k]).tolist()


def test_unset_max_eval_samples_caps_dev_and_test_with_the_same_seeded_rows(tmp_path):
    data = load_task(local_task(tmp_path, max_eval_samples=10, split_seed=3))
    assert data.dev["idx"] == chosen(40, 10, 3)
    assert data.evals["test"]["idx"] == chosen(50, 10, 3)


def test_max_test_samples_caps_the_test_splits_and_leaves_dev_to_max_eval_samples(tmp_path):
    data = load_task(local_task(tmp_path, max_eval_samples=10, max_test_samples=25, split_seed=3))
    assert data.dev["idx"] == chosen(40, 10, 3)  # dev: as without max_test_samples
    assert data.evals["test"]["idx"] == chosen(50, 25, 3)
    assert data.evals["test"]["sentence"] == [f"test sentence {i}" for i in chosen(50, 25, 3)]
    alone = load_task(local_task(tmp_path, max_test_samples=25))
    assert (len(alone.dev), len(alone.evals["test"])) == (40, 25)  # max_eval_samples unset: dev whole
    larger = load_task(local_task(tmp_path, max_eval_samples=10, max_test_samples=500))
    assert len(larger.evals["test"]) == 50  # a cap above the split's size keeps it whole


@pytest.mark.parametrize("value", [0, -5])
def test_max_test_samples_below_one_is_refused(tmp_path, value):
    with pytest.raises(ValueError, match=f"^task.max_test_samples must be >= 1 or null, got {value}$"):
        check_task(local_task(tmp_path, max_test_samples=value))
