"""bench.tools.reload: a finished tiny run rebuilt from its folder reproduces predictions.csv exactly."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from helpers.runs import tiny_run

from bench.tools.reload import load_run, predict


@pytest.fixture
def run_dir(compose, tmp_path):
    return tiny_run(compose, tmp_path)


def test_reloaded_model_reproduces_the_logits_of_predictions_csv(run_dir):
    run = load_run(run_dir)
    with (run_dir / "predictions.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(run.evals) == ["dev", "test"] and {r["split"] for r in rows} == {"dev", "test"}
    logits = predict(run)
    for split, ds in run.evals.items():
        mine = [r for r in rows if r["split"] == split]
        assert len(mine) == len(ds) == 32
        assert [int(r["idx"]) for r in mine] == ds["idx"]  # same examples, same order
        assert [int(r["label"]) for r in mine] == ds["label"]
        saved = np.array([[float(r["logit_0"]), float(r["logit_1"])] for r in mine], dtype=np.float32)
        np.testing.assert_array_equal(logits[split], saved)  # %.9g round-trips float32
    assert (run.variant.name, run.model.training, run.task.name) == ("lora", False, "rt_polarity")


def test_a_run_without_adapter_names_the_setting(tmp_path):
    (tmp_path / "config.yaml").write_text("seed: 0\n")
    with pytest.raises(FileNotFoundError, match=r"has no saved adapter .*train.save_adapter false"):
        load_run(tmp_path)
