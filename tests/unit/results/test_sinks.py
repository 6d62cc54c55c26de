"""bench.results.sinks: the Sink protocol, and a config's sinks (the runs CSV first, then one per logger)."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from bench.results.runs_csv import RunsCsv
from bench.results.sinks import Sink, make_sinks
from bench.results.wandb_sink import WandbSink


def test_both_sinks_follow_the_protocol(tmp_path):
    assert isinstance(RunsCsv(tmp_path / "runs.csv"), Sink)
    assert isinstance(WandbSink(mode="disabled"), Sink)
    WandbSink(mode="disabled").recover({})  # a documented no-op


def test_make_sinks_always_starts_with_the_runs_csv(tmp_path):
    paths = {"results": str(tmp_path), "runs_csv": str(tmp_path / "runs.csv")}
    [only] = make_sinks(OmegaConf.create({"paths": paths, "logger": {}}))
    assert isinstance(only, RunsCsv) and only.path == tmp_path / "runs.csv"
    wandb = {"_target_": "bench.results.wandb_sink.WandbSink", "mode": "disabled"}
    csv_sink, wandb_sink = make_sinks(OmegaConf.create({"paths": paths, "logger": {"wandb": wandb}}))
    assert isinstance(csv_sink, RunsCsv) and isinstance(wandb_sink, WandbSink)
    bad = {"paths": paths, "logger": {"odd": {"_target_": "builtins.dict"}}}
    with pytest.raises(
        TypeError, match=r"logger.odd \(dict\) is not a Sink: it lacks start, log, finish, recover"
    ):
        make_sinks(OmegaConf.create(bad))
