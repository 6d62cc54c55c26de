"""Composing the configs the way users do: every option of every group, and errors at compose time."""

import re
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
from helpers.paths import ROOT
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

import variants
from bench.config.schemas import ModelConfig, RootConfig, TaskConfig, TrainConfig
from bench.config.store import CONF_DIR, group_options, groups
from bench.inputs.models import resolve_targets


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


@pytest.mark.parametrize(
    "launcher", ["basic", "joblib", "submitit_local", "submitit_slurm", "local_parallel", "slurm"]
)
def test_launchers_compose(compose_cfg, launcher):
    cfg = compose_cfg(f"hydra/launcher={launcher}")
    plugin = {"local_parallel": "joblib", "slurm": "submitit"}.get(launcher, launcher.split("_")[0])
    assert plugin in cfg.hydra.launcher._target_.lower()


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
    assert CONF_DIR.resolve() == ROOT / "conf"  # bench/conf links to it


# -- each default stated once ------------------------------------------------------------------------

SCHEMAS = {"model": ModelConfig, "task": TaskConfig}
# conf/train.yaml's `paths` interpolate the environment (owned by the results sinks); hydra is Hydra's.
TRAIN_YAML_KEYS = {"defaults", "paths", "hydra"}


def yaml_files(group: str) -> list[Path]:
    return sorted((CONF_DIR / group).glob("*.yaml"))


def test_train_yaml_sets_no_schema_field():
    raw = OmegaConf.load(CONF_DIR / "train.yaml")
    assert set(raw) <= TRAIN_YAML_KEYS, f"conf/train.yaml restates schema fields {set(raw) - TRAIN_YAML_KEYS}"


@pytest.mark.parametrize("path", yaml_files("variant"), ids=lambda p: p.stem)
def test_variant_yaml_sets_no_schema_field(path):
    raw = OmegaConf.load(path)
    extra = [k for k in raw if k != "defaults"]
    assert not extra, f"{path} sets {extra}: state them in the variant's Config dataclass"
    assert list(raw.defaults) == [f"{path.stem}_schema", "_self_"]


@pytest.mark.parametrize(
    "path", [p for g in SCHEMAS for p in yaml_files(g)], ids=lambda p: f"{p.parent.name}/{p.stem}"
)
def test_model_and_task_yaml_restate_no_schema_default(path):
    schema = OmegaConf.structured(SCHEMAS[path.parent.name])
    raw = OmegaConf.load(path)
    restated = [
        key
        for key in raw
        if key != "defaults"
        and not OmegaConf.is_missing(schema, key)
        and not OmegaConf.is_interpolation(raw, key)  # read from elsewhere (a budget's value), not restated
        and OmegaConf.to_container(OmegaConf.create({"v": raw[key]}))["v"]
        == OmegaConf.to_container(OmegaConf.create({"v": schema[key]}))["v"]
    ]
    assert not restated, f"{path} restates the schema's defaults of {restated}"


@pytest.mark.parametrize("variant", options("variant"))
def test_every_variant_default_composes_from_its_dataclass(compose_cfg, variant):
    cfg = compose_cfg(f"variant={variant}")
    assert OmegaConf.to_container(cfg.variant) == asdict(variants.get(variant).Config())


def test_lora_gets_use_rslora_and_init_from_the_dataclass(compose_cfg):
    cfg = compose_cfg("variant=lora")
    assert (cfg.variant.use_rslora, cfg.variant.init) == (False, "kaiming")


def test_train_and_root_defaults_compose_from_the_schemas(compose_cfg):
    cfg = compose_cfg()
    assert OmegaConf.to_container(cfg.train) == asdict(TrainConfig())
    root = RootConfig()
    for key in ("seed", "device", "resume", "force", "experiment_name"):
        assert cfg[key] == getattr(root, key)


def test_minilm_shows_its_own_shape(compose_cfg):
    model = compose_cfg().model
    assert (model.name, model.hidden_size, model.num_layers, model.num_heads) == ("minilm", 384, 6, 12)


# -- the short CPU budget ----------------------------------------------------------------------------

# What experiment=demo composed before the budget moved into conf/budget/cpu_short.yaml.
DEMO = {
    "model.name": "minilm",
    "model.max_length": 64,
    "task.name": "rt_polarity",
    "task.max_train_samples": 2000,
    "task.max_eval_samples": 1000,
    "train.epochs": 2,
    "train.batch_size": 32,
    "seed": 0,
}  # not train.lr: the demo trains at the tuned lrs (tests/e2e/test_sweeps.py), the others at the variant's


@pytest.mark.parametrize(
    "overrides", [["experiment=demo"], ["experiment=demo_all"], ["budget=cpu_short"]], ids=" ".join
)
def test_cpu_short_budget(compose_cfg, overrides):
    cfg = compose_cfg(*overrides, "variant=lora")
    assert {k: OmegaConf.select(cfg, k) for k in DEMO} == DEMO


@pytest.mark.parametrize("experiment", ["compare_archive", "offline_suite", "rank_sweep", "lr_search"])
def test_experiments_share_the_budget(compose_cfg, experiment):
    if experiment == "lr_search":
        pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    cfg = compose_cfg(f"experiment={experiment}", "task=rt_polarity", "variant=lora")
    assert {k: OmegaConf.select(cfg, k) for k in DEMO} == DEMO
    assert cfg.train.lr is None  # the variant's own lr (compare scales it with train.lr_scale)


def test_the_comparison_has_its_own_budget(compose_cfg):
    cfg = compose_cfg("experiment=compare", "task=rt_polarity", "variant=lora")
    task = {k: cfg.task[k] for k in ("max_train_samples", "max_eval_samples", "max_test_samples")}
    assert task == {"max_train_samples": 1000, "max_eval_samples": 500, "max_test_samples": 2000}
    assert (cfg.train.epochs, cfg.model.max_length, cfg.task.test_fraction) == (2, 64, 0.5)
    assert cfg.train.lr is None


# -- targets -----------------------------------------------------------------------------------------


def test_a_target_list_composes_and_resolves(compose_cfg):
    cfg = compose_cfg("variant.targets=[key,value]")
    model = OmegaConf.to_object(cfg.model)
    assert resolve_targets(model, cfg.variant.targets).modules == ["key", "value"]
    built = variants.build("lora", OmegaConf.to_container(cfg.variant, resolve=True))
    assert resolve_targets(model, built.config.targets).modules == ["key", "value"]


# -- --help and the docs ---------------------------------------------------------------------------


def train_help() -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "train", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_help_lists_each_groups_real_options():
    text = train_help()
    assert "_schema" not in text.split("== Config ==")[0]
    for group in groups():
        assert f"{group}: {', '.join(group_options(group))}\n" in text
    variant_row = (
        "variant: adalora, bitfit, dora, full, head, ia3, loha, lokr, lora, loraplus, oft, prompt_tuning, "
        "qlora, qlora_as_lora, vera"
    )
    assert variant_row in text
    assert "hydra/launcher: basic, joblib, local_parallel" in text


def documented_groups() -> dict[str, set[str]]:
    """docs/running.md's `| group | options |` table: {group: the backticked options of its row}."""
    lines = (ROOT / "docs" / "running.md").read_text().splitlines()
    start = lines.index("| group | options |")
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        group, opts = (cell.strip() for cell in line.strip("|").split("|")[:2])
        rows[group.strip("`")] = set(re.findall(r"`([^`]+)`", opts))
    return rows


def test_documented_group_table_lists_the_real_options():
    table = documented_groups()
    assert list(table) == groups()
    for group, listed in table.items():
        real = set(options(group)) if group == "variant" else set(group_options(group))  # plugins vary
        assert listed == real, (
            f"docs/running.md's {group} row: missing {real - listed}, extra {listed - real}"
        )


# -- layering ----------------------------------------------------------------------------------------


def test_the_loop_imports_neither_hydra_nor_datasets():
    code = "import sys, bench.run.loop; print(sorted({'hydra', 'datasets'} & set(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_metrics_does_not_import_tasks():
    code = "import sys, bench.inputs.metrics; print('bench.inputs.tasks' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.stdout.strip() == "False", proc.stderr
