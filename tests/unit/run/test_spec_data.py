"""The data is part of what a run is (bench.run.spec): the fingerprint of the user's files a task reads
enters the config hash, so an edited file is a new configuration and the same command trains again;
packaged data (the vader corpora) adds nothing."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from helpers.paths import FIXTURES
from helpers.runs import TINY_RUN
from omegaconf import OmegaConf

from bench.config import hashing
from bench.inputs.fingerprint import digest, fingerprint
from bench.inputs.tasks import data_files
from bench.run import runner
from bench.run.spec import RunSpec


@pytest.fixture
def data(tmp_path, monkeypatch) -> Path:
    """A copy of the SST-2 fixture (GLUE TSV files) the test may edit; the fingerprint cache in tmp_path."""
    monkeypatch.setenv("PEFT_BENCH_CACHE", str(tmp_path / "cache"))
    return Path(shutil.copytree(FIXTURES / "glue" / "sst2", tmp_path / "sst2_data"))


def sst2_run(data: Path, results: Path) -> list[str]:
    return ["model=tiny", "task=sst2", f"task.data_dir={data}", "train.epochs=1", f"paths.results={results}"]


def edit(path: Path, text: str) -> None:
    """Rewrite ``path`` with ``text`` and move its mtime on, as an editor saving it a second later does."""
    mtime = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(mtime + 1_000_000_000, mtime + 1_000_000_000))


def test_the_data_fingerprint_enters_the_hash_and_an_edit_changes_it(compose, data, tmp_path):
    cfg = compose(sst2_run(data, tmp_path))
    spec = RunSpec.of(cfg, tmp_path / "r")
    files = fingerprint(data_files(spec.task))
    assert [(f.split, f.name) for f in files] == [("train", "train.tsv"), ("validation", "dev.tsv")]
    assert spec.data_files == tuple(files)
    assert spec.config["task"]["data_fingerprint"] == digest(files)
    assert spec.config_hash == hashing.config_hash(spec.config)
    plain = OmegaConf.to_container(cfg, resolve=True)
    assert spec.config_hash != hashing.config_hash(plain)  # the path alone is not the data
    assert hashing.config_settings(spec.config)["task.data_fingerprint"] == digest(files)
    edit(data / "train.tsv", (data / "train.tsv").read_text().replace("\t0", "\t1", 1))
    edited = RunSpec.of(compose(sst2_run(data, tmp_path)), tmp_path / "r")
    assert (edited.config_hash, edited.config_key) != (spec.config_hash, spec.config_key)


def test_packaged_data_adds_nothing_to_the_hash(compose, tmp_path):
    cfg = compose([*TINY_RUN, f"paths.results={tmp_path}", f"task.data_dir={tmp_path}"])
    spec = RunSpec.of(cfg, tmp_path / "r")
    assert spec.data_files == () and spec.config["task"]["data_fingerprint"] is None
    assert "task.data_fingerprint" not in hashing.config_settings(spec.config)
    assert spec.config_hash == hashing.config_hash(OmegaConf.to_container(cfg, resolve=True))


def test_edited_data_trains_again_where_the_same_data_is_already_completed(
    compose, data, tmp_path, one_thread
):
    first = runner.run(compose(sst2_run(data, tmp_path)), tmp_path / "runs" / "a")
    assert first.skipped is None and first.metrics["status"] == "completed"
    recorded = json.loads((tmp_path / "runs" / "a" / "metrics.json").read_text())
    files = fingerprint({"train": data / "train.tsv", "validation": data / "dev.tsv"})
    assert recorded["data_files"] == [
        {"split": f.split, "name": f.name, "size": f.size, "sha256": f.sha256} for f in files
    ]
    assert recorded["settings"]["task.data_fingerprint"] == digest(files)
    again = runner.run(compose(sst2_run(data, tmp_path)), tmp_path / "runs" / "b")
    assert again.skipped and "already completed" in again.skipped
    edit(data / "dev.tsv", (data / "dev.tsv").read_text().replace("\t1", "\t0", 1))
    edited = runner.run(compose(sst2_run(data, tmp_path)), tmp_path / "runs" / "c")
    assert edited.skipped is None and edited.metrics["status"] == "completed"
    assert edited.metrics["config_hash"] != first.metrics["config_hash"]
