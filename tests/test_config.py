"""Composing the configs the way users do: every option of every group, and errors at compose time."""

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

import variants
from bench.config import CONF_DIR


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


@pytest.fixture
def compose_cfg(compose, tmp_path):
    """compose_cfg(*overrides): conftest's compose of train.yaml, hydra node included, results in tmp_path."""
    return lambda *overrides: compose([f"paths.results={tmp_path}", *overrides], return_hydra_config=True)


def test_default_config(compose_cfg):
    cfg = compose_cfg()
    assert (cfg.model.name, cfg.task.name, cfg.variant.name) == ("minilm", "rt_polarity", "lora")
    assert cfg.variant.r == 8 and cfg.variant.targets == "attention"
    assert list(cfg.logger) == []  # logger=none: only the always-on runs CSV
    assert cfg.paths.runs_csv.endswith("runs.csv")


@pytest.mark.parametrize("variant", options("variant"))
def test_every_variant_composes(compose_cfg, variant):
    cfg = compose_cfg(f"variant={variant}")
    assert cfg.variant.name == variant
    assert variant in variants.available()
    built = variants.build(variant, OmegaConf.to_container(cfg.variant, resolve=True))
    assert built.config.lr > 0


def test_every_registered_variant_has_a_config():
    assert set(variants.available()) <= set(options("variant"))


@pytest.mark.parametrize("task", options("task"))
def test_every_task_composes(compose_cfg, task):
    cfg = compose_cfg(f"task={task}")
    assert cfg.task.name == task
    assert cfg.task.num_labels >= 1 and cfg.task.text_fields
    suffixes = [s for s in cfg.task.eval_splits.values() if s]
    expected = (
        [f"{m}_{s}" for m in cfg.task.metrics for s in suffixes] if suffixes else list(cfg.task.metrics)
    )
    assert cfg.task.main_metric in expected


@pytest.mark.parametrize("model", options("model"))
def test_every_model_composes(compose_cfg, model):
    cfg = compose_cfg(f"model={model}")
    assert cfg.model.name == model
    assert set(cfg.model.targets) == {"attention", "attention_all", "all_linear"}
    assert cfg.model.head


@pytest.mark.parametrize("logger", options("logger"))
def test_every_logger_composes(compose_cfg, logger):
    cfg = compose_cfg(f"logger={logger}")
    expected = {"none": [], "wandb": ["wandb"]}[logger]
    assert sorted(cfg.logger) == expected
    assert all("_target_" in cfg.logger[k] for k in cfg.logger)


@pytest.mark.parametrize("experiment", options("experiment"))
def test_every_experiment_composes(compose_cfg, experiment):
    cfg = compose_cfg(f"experiment={experiment}")
    assert cfg.experiment_name == experiment
    params = cfg.hydra.sweeper.get("params") or {}
    for name in str(params.get("variant", "")).split(","):
        assert not name or name in variants.available(), (
            f"experiment {experiment} sweeps unknown variant {name}"
        )


@pytest.mark.parametrize("launcher", ["basic", "joblib", "submitit_local", "submitit_slurm"])
def test_launchers_compose(compose_cfg, launcher):
    cfg = compose_cfg(f"hydra/launcher={launcher}")
    assert launcher.split("_")[0] in cfg.hydra.launcher._target_.lower()


def test_typo_in_variant_option_fails_at_compose(compose_cfg):
    with pytest.raises(ConfigCompositionException) as e:
        compose_cfg("variant.rr=3")
    assert "rr" in str(e.value.__cause__ or e.value)


def test_wrong_type_fails_at_compose(compose_cfg):
    with pytest.raises(ConfigCompositionException) as e:
        compose_cfg("variant.r=x")
    assert "r" in str(e.value.__cause__ or e.value)


def test_unknown_variant_lists_choices(compose_cfg):
    with pytest.raises(ConfigCompositionException) as e:
        compose_cfg("variant=lorra")
    message = str(e.value)
    assert "lorra" in message and "lora" in message and "dora" in message


def test_unknown_task_lists_choices(compose_cfg):
    with pytest.raises(ConfigCompositionException) as e:
        compose_cfg("task=sst3")
    assert "sst3" in str(e.value) and "sst2" in str(e.value)


def test_typo_in_train_option_fails(compose_cfg):
    with pytest.raises(ConfigCompositionException):
        compose_cfg("train.epoch=3")


def test_conf_dir_is_the_repo_conf():
    assert (Path(CONF_DIR) / "train.yaml").exists()
