"""bench.results.sinks: the Sink protocol, and a config's sinks (the runs CSV first, then one per logger,
each of an allowed target: a built-in sink or one a plugin declares)."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest
from omegaconf import OmegaConf

from bench.config import targets
from bench.results.runs_csv import RunsCsv
from bench.results.sinks import Sink, make_sinks
from bench.results.wandb_sink import WandbSink


def test_both_sinks_follow_the_protocol(tmp_path):
    assert isinstance(RunsCsv(tmp_path / "runs.csv"), Sink)
    assert isinstance(WandbSink(mode="disabled"), Sink)
    WandbSink(mode="disabled").recover({})  # a documented no-op


def test_make_sinks_always_starts_with_the_runs_csv(tmp_path, monkeypatch):
    paths = {"results": str(tmp_path), "runs_csv": str(tmp_path / "runs.csv")}
    [only] = make_sinks(OmegaConf.create({"paths": paths, "logger": {}}))
    assert isinstance(only, RunsCsv) and only.path == tmp_path / "runs.csv"
    wandb = {"_target_": "bench.results.wandb_sink.WandbSink", "mode": "disabled"}
    csv_sink, wandb_sink = make_sinks(OmegaConf.create({"paths": paths, "logger": {"wandb": wandb}}))
    assert isinstance(csv_sink, RunsCsv) and isinstance(wandb_sink, WandbSink)
    odd = EntryPoint(name="odd", value="builtins:dict", group=targets.SINKS)  # a plugin's, but no Sink
    monkeypatch.setattr(targets, "entry_points", lambda group: [odd] if group == targets.SINKS else [])
    bad = {"paths": paths, "logger": {"odd": {"_target_": "builtins.dict"}}}
    with pytest.raises(
        TypeError, match=r"logger.odd \(dict\) is not a Sink: it lacks start, log, finish, recover"
    ):
        make_sinks(OmegaConf.create(bad))


def test_a_logger_naming_any_other_callable_is_refused_before_it_runs(tmp_path):
    victim = tmp_path / "F"
    victim.write_text("kept")
    paths = {"results": str(tmp_path), "runs_csv": str(tmp_path / "runs.csv")}
    opened = {"_target_": "builtins.open", "file": str(victim), "mode": "w"}
    with pytest.raises(ValueError, match=r"^logger.x._target_='builtins.open' is not allowed: .*WandbSink$"):
        make_sinks(OmegaConf.create({"paths": paths, "logger": {"x": opened}}))
    assert victim.read_text() == "kept"
