"""Structured-config schemas and their registration in Hydra's ConfigStore.

Every YAML file of a group extends the schema stored here (``defaults: [<name>_schema, _self_]``), so a
typo (``variant.rr=3``) or a wrong type (``variant.r=x``) fails when the config is composed. Each
variant's ``Config`` dataclass is stored as ``variant/<name>_schema``; a plugin variant without YAML of
its own is also stored as ``variant/<name>``, so ``variant=<name>`` composes from its dataclass defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

import variants
from bench.loop import TrainConfig
from bench.models import ModelConfig
from bench.tasks import TaskConfig

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


@dataclass
class PathsConfig:
    """Where results go; the values are set once, in conf/train.yaml's ``paths:``."""

    results: str = MISSING  # $PEFT_BENCH_RESULTS, else results
    runs_csv: str = MISSING  # <results>/runs.csv: one row per run (bench.runs_csv)


@dataclass
class RootConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    variant: Any = None
    logger: Any = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    resume: bool = True  # skip a run whose config hash already completed
    force: bool = False  # rerun even when completed
    experiment_name: str = "default"


def register_configs() -> None:
    """Store every schema (built-in and plugin variants included) in Hydra's ConfigStore."""
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=RootConfig)
    cs.store(group="model", name="model_schema", node=ModelConfig)
    cs.store(group="task", name="task_schema", node=TaskConfig)
    for name in variants.available():
        cls = variants.get(name)
        cs.store(group="variant", name=f"{name}_schema", node=cls.Config)
        if not (CONF_DIR / "variant" / f"{name}.yaml").exists():
            cs.store(group="variant", name=name, node=cls.Config(name=name))
    for name in variants.broken():  # composes; the run then fails with the plugin's load error
        cs.store(group="variant", name=name, node={"name": name})
