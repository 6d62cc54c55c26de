"""bench.analysis.setting: the comparison's setting in one sentence (model, budget, device, seeds, code)."""

from __future__ import annotations

import json

import numpy as np
from helpers.paired_runs import flip, write_task

from bench.analysis import runs_table
from bench.analysis.configurations import tuned_board
from bench.analysis.setting import setting_text

LABELS = np.random.default_rng(0).integers(0, 2, 100)


def test_one_code_version_and_device(tmp_path):
    write_task(tmp_path, "t", LABELS, {"a": [flip(LABELS, 0.1, s) for s in range(3)]}, {"a": 10})
    runs = runs_table.load(tmp_path)
    text = setting_text(runs, tuned_board(runs, full=True), tmp_path)
    assert text.startswith("Setting: model minilm; budget 2 ep x bs 32")
    assert "device cpu; 3 seeds per selected configuration;" in text
    assert text.endswith("code (code_version): abcdef012345; no run from a modified tree.")


def test_several_commits_and_a_modified_tree_are_counted(tmp_path):
    write_task(tmp_path, "t", LABELS, {"a": [flip(LABELS, 0.1, s) for s in range(3)]}, {"a": 10})
    for seed, commit in enumerate(["c1", "c1-dirty", "c2"]):
        path = tmp_path / "t" / f"a-s{seed}" / "metrics.json"
        metrics = json.loads(path.read_text())
        del metrics["code_version"], metrics["code_dirty"]
        path.write_text(json.dumps(metrics | {"git_commit": commit}))
    runs = runs_table.load(tmp_path)
    text = setting_text(runs, tuned_board(runs, full=True), tmp_path)
    assert text.endswith("code (git_commit): 2 commits (c1: 2 runs, c2: 1 run); 1 run from a modified tree.")
