"""The output checks (bench.run.checks.check_outputs): every file a run writes can be written, and the run
folder holds no run of another configuration (what it holds: held_run)."""

from __future__ import annotations

import json

import pytest
from helpers.runs import TINY_RUN
from omegaconf import OmegaConf

from bench.results.run_folder import RunFolder
from bench.run import checks
from bench.run.spec import RunSpec


@pytest.fixture
def spec(compose, tmp_path) -> RunSpec:
    """A tiny run's spec, its folder ``<tmp>/runs/tiny`` (not made)."""
    return RunSpec.of(compose([*TINY_RUN, f"paths.results={tmp_path}"]), tmp_path / "runs" / "tiny")


def test_the_shared_outputs_are_the_runs_csv_and_the_index_with_their_locks(spec, tmp_path):
    assert checks.shared_outputs(spec) == {
        "the runs CSV": tmp_path / "runs.csv",
        "the runs CSV's lock": tmp_path / ".runs.csv.lock",
        "the results index": tmp_path / ".index.jsonl",
        "the results index's lock": tmp_path / ".index.jsonl.lock",
    }


def test_outputs_not_made_yet_are_checked_where_they_will_go_and_nothing_is_left(spec, tmp_path):
    checks.check_outputs(spec)  # nothing exists yet: the nearest folders that do are written to
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("what", ["the runs CSV", "the runs CSV's lock", "the results index"])
def test_an_output_that_cannot_be_written_is_named(spec, what):
    path = checks.shared_outputs(spec)[what]
    path.mkdir(parents=True)  # a folder where the file should be: unwritable, even for root
    with pytest.raises(OSError, match=f"cannot write {what} {path}: Is a directory"):
        checks.check_outputs(spec)


def test_an_existing_output_is_opened_and_left_as_it_was(spec, tmp_path):
    (tmp_path / "runs.csv").write_text("a,b\n1,2\n")
    checks.check_outputs(spec)
    assert (tmp_path / "runs.csv").read_text() == "a,b\n1,2\n"


def test_what_a_folder_holds(spec, tmp_path):
    folder = RunFolder(tmp_path / "f")
    assert checks.held_run(folder) is None  # no folder
    folder.path.mkdir()
    (folder.path / "error.txt").write_text("x")
    assert checks.held_run(folder) is None  # no run
    folder.write_resumed("abc", tmp_path / "done")
    assert checks.held_run(folder) == ("abc", "skipped by resume")
    folder.write_config(spec.config_yaml)
    assert checks.held_run(folder) == (spec.config_hash, "lora-rt_polarity-s0, started and never ended")
    folder.metrics_path.write_text("{")  # cut short: the config.yaml tells
    assert checks.held_run(folder)[0] == spec.config_hash
    folder.write_metrics({"config_hash": "def", "run_name": "x-y-s1", "status": "failed"})
    assert checks.held_run(folder) == ("def", "x-y-s1, failed")
    folder.metrics_path.unlink()
    folder.write_config("seed: [")  # a config.yaml that does not parse is no run of this config
    assert checks.held_run(folder) == (None, "a config.yaml this version cannot read")


def test_the_folder_check_refuses_another_configuration_only(spec, compose, tmp_path):
    checks.check_folder(spec)  # no folder yet
    spec.folder.path.mkdir(parents=True)
    spec.folder.write_metrics({"config_hash": spec.config_hash, "run_name": "r", "status": "failed"})
    checks.check_folder(spec)  # its own configuration, failed: rerun in place
    other = RunSpec.of(compose([*TINY_RUN, f"paths.results={tmp_path}", "seed=1"]), spec.folder.path)
    with pytest.raises(FileExistsError, match=rf"holds another run \(r, failed, config {spec.config_hash}\)"):
        checks.check_folder(other)
    spec.folder.metrics_path.unlink()
    spec.folder.write_config(OmegaConf.to_yaml(OmegaConf.create(json.loads(json.dumps(spec.config)))))
    with pytest.raises(FileExistsError, match="lora-rt_polarity-s0, started and never ended"):
        checks.check_folder(other)
