"""A run's spec: what one run is, resolved from its composed config once, before anything runs.

``RunSpec.of(cfg, run_dir, sweep_dir)`` resolves the config to plain containers and the section
dataclasses, fingerprints the user's data files the task reads (``bench.inputs.fingerprint``: their
digest joins the task section as ``task.data_fingerprint``), computes the config hash and key
(``bench.config.hashing``), the lr it trains with and its name, notes the task config file the config
was composed from, and names its paths: the run folder, the results folder and its runs CSV, the
checkpoint folder. Every phase of ``bench.run.runner`` reads the spec; none changes it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

import variants
from bench.config import hashing
from bench.config.schemas import ModelConfig, TaskConfig, TrainConfig
from bench.inputs import fingerprint
from bench.inputs.metrics import DEV, selection_key
from bench.inputs.tasks import data_files
from bench.results.run_folder import RunFolder
from bench.run import checkpoint

T = TypeVar("T")


def make_dataclass(cls: type[T], values: dict[str, Any]) -> T:
    """``cls`` from the keys of ``values`` that are its fields (a config section as a dataclass)."""
    return cls(**{k: v for k, v in values.items() if k in {f.name for f in dataclasses.fields(cls)}})


def trained_lr(train: TrainConfig, variant: Mapping[str, Any]) -> float | None:
    """The lr a run trains with: train.lr (else the variant's) times train.lr_scale; None when neither is."""
    base_lr = train.lr or variant.get("lr")
    return base_lr * train.lr_scale if base_lr is not None else None


def label_hparams(variant_name: str) -> list[str]:
    """The hparams that name a run's configuration: lr, then the variant class's ``key_hparams``."""
    try:
        cls = variants.get(variant_name)
    except (KeyError, ImportError):  # an unknown or broken variant: the checks record the run as failed
        return ["lr"]
    return ["lr", *cls.key_hparams]


def task_choice() -> str | None:
    """The task config file the running Hydra app composed (``task=NAME``: conf/task/NAME.yaml), from
    its runtime choices; None outside a Hydra app (a config composed in a test or a notebook)."""
    return HydraConfig.get().runtime.choices.get("task") if HydraConfig.initialized() else None


@dataclass(frozen=True)
class RunSpec:
    """One run, resolved: its config, hash, key, names and paths."""

    config: dict[str, Any]  # the resolved config as plain containers, without Hydra's node
    config_yaml: str  # config.yaml's text: the composed config, resolved
    model: ModelConfig
    task: TaskConfig
    train: TrainConfig
    variant: dict[str, Any]  # the variant's name and options, for variants.build
    seed: int
    select_on: str  # dev | test (bench.run.checks.SELECT_ON)
    device: str  # as configured: auto, cpu, cuda, ... (bench.run.device.pick_device)
    resume: bool  # look for a completed run of this config hash (resume=true and force=false)
    lr: float | None  # trained_lr
    config_hash: str  # the run (bench.config.hashing.config_hash)
    config_key: str  # its configuration: the hash without the seed
    run_name: str  # <variant>-<task>-s<seed>
    folder: RunFolder
    results: Path  # the results folder (paths.results): the index and the checkpoints live there
    checkpoints: Path  # this config hash's checkpoint folder (bench.run.checkpoint.folder)
    sweep_dir: str | None  # the sweep folder of a multirun, else None
    data_files: tuple[fingerprint.DataFile, ...] = ()  # the user's data files the task reads (fingerprinted)
    task_choice: str | None = None  # the task config file composed (task=NAME), under Hydra
    require_clean_code: bool = False  # refuse to start on uncommitted code (bench.run.checks)

    @classmethod
    def of(cls, cfg: DictConfig, run_dir: str | Path, sweep_dir: str | None = None) -> RunSpec:
        """The spec of the run of ``cfg`` (the composed config) in ``run_dir``."""
        container = OmegaConf.to_container(cfg, resolve=True)
        container.pop("hydra", None)
        results = Path(container["paths"]["results"])
        task = make_dataclass(TaskConfig, container["task"])
        files = fingerprint.fingerprint(data_files(task, with_dev=container["select_on"] == DEV))
        container["task"][fingerprint.SETTING] = fingerprint.digest(files) if files else None
        cfg_hash = hashing.config_hash(container)
        variant = container["variant"]
        train = make_dataclass(TrainConfig, container["train"])
        return cls(
            config=container,
            config_yaml=OmegaConf.to_yaml(cfg, resolve=True),
            model=make_dataclass(ModelConfig, container["model"]),
            task=task,
            train=train,
            variant=variant,
            seed=container["seed"],
            select_on=container["select_on"],
            device=container["device"],
            resume=bool(container["resume"] and not container["force"]),
            lr=trained_lr(train, variant),
            config_hash=cfg_hash,
            config_key=hashing.config_key(container),
            run_name=f"{variant['name']}-{container['task']['name']}-s{container['seed']}",
            folder=RunFolder(Path(run_dir)),
            results=results,
            checkpoints=checkpoint.folder(results, cfg_hash),
            sweep_dir=sweep_dir,
            data_files=tuple(files),
            task_choice=task_choice(),
            require_clean_code=bool(container.get("require_clean_code", False)),
        )

    @property
    def variant_name(self) -> str:
        return self.variant["name"]

    @property
    def selection_metric(self) -> str:
        """The metric whose best value selects the evaluation a run reports (bench.inputs.metrics)."""
        return selection_key(self.task, self.select_on)

    @property
    def group(self) -> str | None:
        """The sweep's name (its folder's), grouping its runs in the sinks; None outside a sweep."""
        return Path(self.sweep_dir).name if self.sweep_dir else None
