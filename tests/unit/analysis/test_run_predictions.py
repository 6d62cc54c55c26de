"""bench.analysis.run_predictions: a task's runs found with their test predictions, checked against the
score each recorded, aligned on one set of examples; anything else falls back (None)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from helpers.paired_runs import flip, write_predictions, write_task

from bench.analysis.run_predictions import base_metric, locate, run_of, task_runs

LABELS = np.random.default_rng(0).integers(0, 2, 400)


def rows_of(root, variants) -> pd.DataFrame:
    """The selected rows of a task as the tuned table has them (run_dirs, scores_x100)."""
    out = []
    for variant, preds in variants.items():
        dirs = [str(root / "t" / f"{variant}-s{s}") for s in range(len(preds))]
        scores = [float((p == LABELS).mean()) * 100 for p in preds]
        out.append({"task": "t", "variant": variant, "main_metric": "accuracy", "run_dirs": dirs,
                    "scores_x100": scores})  # fmt: skip
    return pd.DataFrame(out)


def test_base_metric_drops_a_split_suffix():
    assert (base_metric("accuracy"), base_metric("accuracy_m"), base_metric("f1")) == (
        "accuracy",
        "accuracy",
        "f1",
    )
    assert base_metric("bleu") is None


def test_task_runs_reads_each_rows_predictions(tmp_path):
    variants = {"a": [flip(LABELS, 0.1, s) for s in range(2)], "b": [flip(LABELS, 0.3, 9)]}
    write_task(tmp_path, "t", LABELS, variants, {"a": 1, "b": 2})
    metric, runs = task_runs(rows_of(tmp_path, variants), tmp_path)
    assert metric == "accuracy" and [len(r) for r in runs.values()] == [2, 1]
    np.testing.assert_array_equal(runs[0][1][0], variants["a"][1])
    np.testing.assert_array_equal(runs[1][0][1], LABELS)


def test_a_folder_moved_elsewhere_is_found_under_the_source(tmp_path):
    variants = {"a": [flip(LABELS, 0.1, 0)]}
    write_task(tmp_path / "old", "t", LABELS, variants, {"a": 1})
    (tmp_path / "old").rename(tmp_path / "new")
    rows = rows_of(tmp_path / "old", variants)  # recorded where they ran
    assert locate(rows["run_dirs"][0][0], tmp_path / "new") == tmp_path / "new" / "t" / "a-s0"
    assert task_runs(rows, tmp_path / "new") is not None


def test_no_predictions_a_score_mismatch_or_other_examples_fall_back(tmp_path):
    variants = {"a": [flip(LABELS, 0.1, 0)], "b": [flip(LABELS, 0.2, 1)]}
    write_task(tmp_path, "t", LABELS, variants, {"a": 1, "b": 2})
    rows = rows_of(tmp_path, variants)
    assert task_runs(rows.assign(run_dirs=[["/nowhere/a-s0"], rows["run_dirs"][1]]), tmp_path / "x") is None
    assert task_runs(rows.assign(scores_x100=[[50.0], [80.0]]), tmp_path) is None  # another run's file
    write_predictions(tmp_path / "t" / "b-s0", LABELS[:399], variants["b"][0][:399])
    rows = rows.assign(
        scores_x100=[rows["scores_x100"][0], [float((variants["b"][0][:399] == LABELS[:399]).mean() * 100)]]
    )
    assert task_runs(rows, tmp_path) is None  # 399 examples against 400


def test_of_several_splits_the_one_that_reproduces_the_score(tmp_path):
    preds = flip(LABELS, 0.25, 0)
    table = pd.concat(
        [
            pd.DataFrame({"split": "matched", "idx": range(400), "label": LABELS, "prediction": LABELS}),
            pd.DataFrame({"split": "mismatched", "idx": range(400), "label": LABELS, "prediction": preds}),
        ]
    )
    table.to_csv(tmp_path / "test_predictions.csv.gz", index=False)
    idx, (got, _) = run_of(tmp_path, "accuracy", 0.75)
    np.testing.assert_array_equal(got, preds)
    assert run_of(tmp_path, "accuracy", 0.5) is None
