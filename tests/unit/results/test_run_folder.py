"""The run folder (bench.results.run_folder.RunFolder): each file read back as written, the walk over a
results folder, and a real run's folder read through it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers.runs import tiny_run

from bench.results.adapter_files import save_adapter
from bench.results.run_folder import RunFolder


def test_each_file_reads_back_what_was_written(tmp_path):
    folder = RunFolder(str(tmp_path / "run"))
    folder.path.mkdir()
    assert folder.metrics_path == tmp_path / "run" / "metrics.json"
    folder.write_metrics({"status": "completed", "best": {"test/accuracy": np.float32(0.5)}})
    assert folder.metrics() == {"status": "completed", "best": {"test/accuracy": 0.5}}
    assert folder.status() == "completed"
    folder.write_config("seed: 3\nmodel:\n  name: tiny\n")
    assert (folder.config().seed, folder.config().model.name) == (3, "tiny")
    rows = [{"epoch": 1.0, "step": 4, "test/accuracy": 0.5}, {"epoch": 2.0, "step": 8, "test/accuracy": 0.75}]
    folder.write_history(rows)
    assert folder.history() == rows
    logits = np.array([[0.25, -1.5], [2.0, 0.125]], dtype=np.float32)
    folder.write_predictions({"test": (logits, np.array([0, 1]), np.array([7, 9]))})
    assert folder.predictions() == [
        {"split": "test", "idx": "7", "label": "0", "prediction": "0", "logit_0": "0.25", "logit_1": "-1.5"},
        {"split": "test", "idx": "9", "label": "1", "prediction": "0", "logit_0": "2", "logit_1": "0.125"},
    ]
    folder.write_resumed("abc", tmp_path / "done")
    assert folder.resumed() == {"config_hash": "abc", "completed_in": str(tmp_path / "done")}
    size = save_adapter(folder.adapter_path, {"w": torch.ones(2)}, {"r": 2})
    assert size == folder.adapter_weights_path.stat().st_size > 0
    assert json.loads((folder.adapter_path / "adapter_config.json").read_text()) == {"r": 2}


def test_a_missing_or_damaged_metrics_file_has_no_status_and_does_not_read(tmp_path):
    folder = RunFolder(tmp_path)
    assert folder.status() is None
    with pytest.raises(OSError):
        folder.metrics()
    folder.metrics_path.write_text('{"status": "compl')
    assert folder.status() is None
    with pytest.raises(ValueError):
        folder.metrics()


def test_under_finds_the_run_folders_at_any_depth_in_path_order(tmp_path):
    for name in ("sweeps/s1/1_b", "sweeps/s1/0_a", "runs/x", ".hydra_only"):
        (tmp_path / name).mkdir(parents=True)
    for name in ("sweeps/s1/1_b", "sweeps/s1/0_a", "runs/x"):
        RunFolder(tmp_path / name).write_metrics({"status": "completed"})
    found = RunFolder.under(tmp_path)
    assert [f.path.relative_to(tmp_path).as_posix() for f in found] == [
        "runs/x",
        "sweeps/s1/0_a",
        "sweeps/s1/1_b",
    ]


def test_a_runs_folder_reads_through_it(compose, tmp_path):
    folder = RunFolder(tiny_run(compose, tmp_path))
    m = folder.metrics()
    assert m["status"] == "completed" and m["run_dir"] == str(folder.path)
    assert folder.config().task.max_train_samples == 32
    history = folder.history()
    assert history[-1]["step"] == m["steps"] and history[-1]["dev/accuracy"] == m["final"]["dev/accuracy"]
    assert "test/accuracy" in m["final"] and "test/accuracy" not in history[-1]  # tested once, at the end
    predictions = folder.predictions()
    assert {r["split"] for r in predictions} == {"dev", "test"} and len(predictions) == 64
    assert folder.adapter_weights_path.is_file() and not folder.resumed_path.exists()
