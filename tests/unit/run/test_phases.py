"""The phases of a run (bench.run.phases): the run header, the first metrics, the resume lookup."""

from __future__ import annotations

import torch
from helpers.runs import TINY_RUN, tiny_run

from bench.results.run_folder import RunFolder
from bench.run import phases
from bench.run.spec import RunSpec


def test_run_header():
    held_out = {"dev": 996, "test": 1000}
    header = phases.run_header("lora", "rt_polarity", "minilm", torch.device("cpu"), 2000, held_out, 2, 126)
    assert header == (
        "lora on rt_polarity with minilm, cpu: 2,000 train, 996 dev, 1,000 test examples, 2 epochs, 126 steps"
    )
    one = phases.run_header("head", "rte", "tiny", torch.device("cuda:0"), 1, {"validation": 1}, 1, 1)
    assert one == "head on rte with tiny, cuda:0: 1 train, 1 validation examples, 1 epoch, 1 step"


def test_the_first_metrics_are_metrics_jsons_first_keys_and_say_failed(compose, tmp_path):
    spec = RunSpec.of(compose([*TINY_RUN, f"paths.results={tmp_path}"]), tmp_path / "runs" / "tiny")
    first = phases.first_metrics(spec)
    assert (first["status"], first["error"], first["run_name"]) == ("failed", None, "lora-rt_polarity-s0")
    assert (first["config_hash"], first["hparams"]["lr"]) == (spec.config_hash, spec.lr)
    written = RunFolder(tiny_run(compose, tmp_path)).metrics()
    assert list(written)[: len(first)] == list(first)  # the rest is added as the run measures it


def test_the_lookup_finds_a_completed_run_only_with_resume_on(compose, tmp_path):
    run_dir = tiny_run(compose, tmp_path)
    cfg = compose([*TINY_RUN, f"paths.results={tmp_path}"])
    assert phases.look_up(RunSpec.of(cfg, tmp_path / "runs" / "again")) == RunFolder(run_dir)
    forced = compose([*TINY_RUN, f"paths.results={tmp_path}", "force=true"])
    assert phases.look_up(RunSpec.of(forced, tmp_path / "runs" / "again")) is None
