"""The config hash: which settings enter it (bench.config.hash_policy), and committed runs keep theirs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from helpers.paths import ROOT
from omegaconf import OmegaConf

from bench.config.hash_policy import hashed_if_set, not_hashed, unhashed
from bench.config.hashing import config_hash

COMPARE = ROOT / "results" / "archive" / "compare"


@dataclasses.dataclass
class Toy:
    kept: int = 1
    quiet: str = not_hashed("auto")
    added: bool = hashed_if_set(False)


def test_a_setting_added_later_is_hashed_only_when_set_and_a_quiet_one_never():
    assert unhashed({"kept": 1, "quiet": "bar", "added": False}, Toy) == {"kept": 1}
    assert unhashed({"kept": 2, "quiet": "off", "added": True}, Toy) == {"kept": 2, "added": True}
    assert unhashed({"kept": 1}, Toy) == {"kept": 1}  # a run recorded before the setting existed


def test_progress_and_save_adapter_do_not_change_the_hash(compose):
    def hash_of(*overrides: str) -> str:
        return config_hash(OmegaConf.to_container(compose(list(overrides)), resolve=True))

    assert hash_of("train.progress=off", "train.save_adapter=false") == hash_of()
    assert hash_of("train.epochs=1") != hash_of()


def test_require_clean_code_does_not_change_the_hash(compose):
    """It decides whether a run starts, not what it computes (a root setting marked ``not_hashed``)."""

    def hash_of(*overrides: str) -> str:
        return config_hash(OmegaConf.to_container(compose(list(overrides)), resolve=True))

    assert hash_of("require_clean_code=true") == hash_of("require_clean_code=false") == hash_of()
    assert compose(["experiment=compare"]).require_clean_code is True


def test_the_tune_section_does_not_change_the_hash(compose):
    """Staged tuning's settings choose which runs to make, not what a run computes."""

    def hash_of(*overrides: str) -> str:
        return config_hash(OmegaConf.to_container(compose(["experiment=compare", *overrides]), resolve=True))

    assert hash_of("tune.top_k=4", "tune.edge_cap=0", "tune.grid=seed") == hash_of()


def test_the_larger_test_sets_are_hashed_only_when_set(compose):
    """max_test_samples and test_fraction (hashed_if_set): unset, a run keeps the hash it had before."""

    def hash_of(*overrides: str) -> str:
        return config_hash(OmegaConf.to_container(compose(["budget=cpu_short", *overrides]), resolve=True))

    assert hash_of("task.max_test_samples=null", "task.test_fraction=null") == hash_of()
    assert hash_of("task.max_test_samples=2000") != hash_of()
    assert hash_of("task.test_fraction=0.4") != hash_of()


@pytest.mark.parametrize(("task", "vader"), [("rt_polarity", True), ("snli", False), ("sst2", False)])
def test_the_budget_s_vader_test_fraction_reaches_the_vader_tasks_alone(compose, task, vader):
    """budget=cpu_compare sets vader_test_fraction; a vader task reads it as task.test_fraction (hashed),
    any other task keeps none, and its hash does not depend on it."""

    def resolved(*overrides: str) -> dict:
        overrides = [f"task={task}", "budget=cpu_compare", *overrides]
        return OmegaConf.to_container(compose(overrides), resolve=True)

    cfg = resolved()
    assert cfg["task"]["test_fraction"] == (0.5 if vader else None)
    assert cfg["task"]["max_test_samples"] == 2000 and cfg["task"]["max_eval_samples"] == 500
    same = config_hash(resolved("vader_test_fraction=null")) == config_hash(cfg)
    assert same is not vader


def committed_runs() -> list[Path]:
    """One committed run of the archived comparison per (task, variant): its first seed at x1."""
    return sorted(COMPARE.glob("*/*-lrx1.0-s0/metrics.json"))


@pytest.mark.parametrize("metrics_json", committed_runs(), ids=lambda p: f"{p.parts[-3]}-{p.parts[-2]}")
def test_the_committed_comparison_keeps_its_hashes(compose, metrics_json):
    """The command that made a committed run composes to its recorded hash today, so resume skips it:
    a setting added since (hashed_if_set) must not make the whole comparison rerun."""
    run = OmegaConf.load(metrics_json.parent / "config.yaml")
    overrides = [
        "experiment=compare_archive",
        f"task={run.task.name}",
        f"variant={run.variant.name}",
        f"train.lr_scale={run.train.lr_scale}",
        f"seed={run.seed}",
    ]
    now = config_hash(OmegaConf.to_container(compose(overrides), resolve=True))
    assert now == json.loads(metrics_json.read_text())["config_hash"]
