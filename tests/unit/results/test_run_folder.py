"""The run folder (bench.results.run_folder.RunFolder): each file read back as written, the walk over a
results folder, and a real run's folder read through it."""

from __future__ import annotations

import gzip
import json
import subprocess

import numpy as np
import pytest
import torch
from helpers.paths import ROOT
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
    tests = folder.test_predictions()  # the reported state's: its accuracy is best's
    assert (
        list(tests["split"].unique()) == ["test"]
        and len(tests) == 32
        and tests["idx"].is_monotonic_increasing
    )
    accuracy = (tests["label"] == tests["prediction"]).mean()
    assert accuracy == pytest.approx(m["best"]["test/accuracy"], abs=1e-12)
    code = ["log", "-1", "--format=%H", "--", "bench", "variants", "conf"]
    version = subprocess.run(["git", "-C", str(ROOT), *code], capture_output=True, text=True).stdout.strip()
    assert m["code_version"] == version and len(version) == 40 and isinstance(m["code_dirty"], bool)


def test_the_test_predictions_are_compact_in_idx_order_and_byte_stable(tmp_path):
    a, b = RunFolder(tmp_path / "a"), RunFolder(tmp_path / "b")
    logits = np.array([[0.25, -1.5], [2.0, 0.125], [-1.0, 3.0]], dtype=np.float32)
    scores = np.array([[0.1], [2.5]], dtype=np.float32)
    outputs = {
        "test": (logits, np.array([0, 0, 1]), np.array([9, 2, 5])),
        "test_b": (scores, np.array([0.3, 2.0], dtype=np.float32), np.array([1, 0])),
    }
    for folder in (a, b):
        folder.path.mkdir()
        folder.write_test_predictions(outputs)
    data = a.test_predictions_path.read_bytes()
    assert a.test_predictions_path.name == "test_predictions.csv.gz"
    assert data == b.test_predictions_path.read_bytes() and data[4:8] == b"\0\0\0\0"  # gzip mtime 0
    assert gzip.decompress(data).decode().splitlines() == [
        "split,idx,label,prediction",
        "test,2,0,0",
        "test,5,1,1",
        "test,9,0,0",
        f"test_b,0,{float(np.float32(2.0))!r},{float(np.float32(2.5))!r}",
        f"test_b,1,{float(np.float32(0.3))!r},{float(np.float32(0.1))!r}",
    ]
    frame = a.test_predictions()
    assert list(frame.columns) == ["split", "idx", "label", "prediction"]
    assert frame["split"].tolist() == ["test"] * 3 + ["test_b"] * 2 and frame["idx"].tolist() == [
        2,
        5,
        9,
        0,
        1,
    ]
    assert frame["prediction"].tolist() == [0, 1, 0, np.float32(2.5), np.float32(0.1)]
