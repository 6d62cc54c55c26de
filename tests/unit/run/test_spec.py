"""A run's spec (bench.run.spec.RunSpec): the composed config resolved once into what every phase reads."""

from __future__ import annotations

import dataclasses

import pytest
from helpers.runs import TINY_RUN
from omegaconf import OmegaConf

from bench.config import hashing
from bench.config.schemas import TrainConfig
from bench.run import checkpoint
from bench.run.spec import RunSpec, trained_lr


def test_the_spec_holds_the_resolved_config_its_hashes_names_and_paths(compose, tmp_path):
    cfg = compose([*TINY_RUN, f"paths.results={tmp_path}", "seed=2", "train.lr_scale=4"])
    spec = RunSpec.of(cfg, tmp_path / "runs" / "r", str(tmp_path / "sweeps" / "s"))
    container = OmegaConf.to_container(cfg, resolve=True)
    assert spec.config == container and "hydra" not in spec.config
    assert spec.config_yaml == OmegaConf.to_yaml(cfg, resolve=True)
    assert (spec.config_hash, spec.config_key) == (
        hashing.config_hash(container),
        hashing.config_key(container),
    )
    assert (spec.model.name, spec.task.max_train_samples, spec.train.epochs) == ("tiny", 32, 1)
    assert spec.lr == pytest.approx(4 * 5e-4)  # lora's lr, times lr_scale
    assert (spec.run_name, spec.selection_metric, spec.group) == ("lora-rt_polarity-s2", "dev/accuracy", "s")
    assert spec.folder.path == tmp_path / "runs" / "r" and spec.results == tmp_path
    assert spec.checkpoints == checkpoint.folder(tmp_path, spec.config_hash)
    assert spec.resume
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.seed = 3  # type: ignore[misc]


def test_force_or_resume_off_starts_from_scratch(compose, tmp_path):
    for overrides in (["force=true"], ["resume=false"]):
        cfg = compose([*TINY_RUN, f"paths.results={tmp_path}", *overrides])
        assert not RunSpec.of(cfg, tmp_path / "r").resume


def test_trained_lr_is_train_lr_else_the_variants_times_the_scale():
    assert trained_lr(TrainConfig(lr=0.1, lr_scale=2.0), {"lr": 5.0}) == pytest.approx(0.2)
    assert trained_lr(TrainConfig(lr_scale=4.0), {"lr": 0.5}) == pytest.approx(2.0)
    assert trained_lr(TrainConfig(), {"name": "broken"}) is None
