"""The schemas' registration in Hydra's ConfigStore (``bench.config.schemas``), and the config resolvers.

Every YAML file of a group extends the schema stored here (``defaults: [<name>_schema, _self_]``), so a
typo (``variant.rr=3``) or a wrong type (``variant.r=x``) fails when the config is composed. The schemas
hold the defaults; a YAML file states only what differs. Each variant's ``Config`` dataclass is stored as
``variant/<name>_schema``; a plugin variant without YAML of its own is also stored as
``variant/<name>``, so ``variant=<name>`` composes from its dataclass defaults.

Hydra's ``+key=value`` adds a key even to a typed section (it opens the section for that one update), so
``compose`` and the run's checks call ``check_keys``: every key of a section a schema types (``model``,
``task``, ``train``, ``paths``, the variant's ``Config``, the root) must be one of its fields. The open
sections are the extension points: ``logger.<name>`` (a sink and its options) and ``hydra.*``; the
dict-valued fields (``model.targets``, ``task.eval_splits``, ``task.tsv_columns``) hold keys of the
user's own. ``unknown_key`` is the one-line error, naming the closest valid keys.

Resolvers (registered by ``register_configs``), so that lists are derived, not written:

- ``${peft_bench.variants:}``: every registered variant, comma-separated (a sweep over all of them).
- ``${peft_bench.tasks:SOURCE}``: every ``conf/task`` file whose ``source`` is SOURCE, comma-separated.
- ``${peft_bench.groups:}``: the groups and their options, one line each (the ``--help`` text).
- ``${peft_bench.selected_lr:NAME,TASK,VARIANT}``: the lr that a tuned comparison selected, from
  ``conf/selected/NAME.yaml`` (written by ``python -m bench leaderboard --selected-lrs``); None (the
  variant's own lr) for a task or variant it does not list, such as a plugin.
- ``${peft_bench.folder:NAME}``: NAME, refused unless it is one safe folder name; the run and sweep
  folders are built from config values (``variant.name``, ``task.name``, ``experiment_name``), and none
  of them may climb out of the results folder (``../x``) or nest (``a/b``).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

import variants
from bench.config.schemas import ModelConfig, PathsConfig, RootConfig, TaskConfig, TrainConfig

# bench/conf is a link to the repository's conf/ (and a copy of it in an installed package), so this one
# path works in a clone, an editable install and a wheel.
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
# Hydra's own groups that conf/hydra/ adds options to and that users choose (the others are set here).
HYDRA_GROUPS = ("hydra/launcher",)
SELECTED_DIR = CONF_DIR / "selected"  # tuned lrs (not a group: read by the selected_lr resolver)
SCHEMA_SUFFIX = "_schema"
# The sections a schema types, whose keys are its fields (the variant's: its class's Config).
CLOSED_SECTIONS = {"model": ModelConfig, "task": TaskConfig, "train": TrainConfig, "paths": PathsConfig}
OPEN_SECTIONS = ("logger", "hydra")  # sinks and their options; Hydra's own settings
FOLDER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._=+-]*")
T = TypeVar("T")


def register_configs() -> None:
    """Store every schema (built-in and plugin variants included) in Hydra's ConfigStore; add resolvers."""
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=RootConfig)
    cs.store(group="model", name=f"model{SCHEMA_SUFFIX}", node=ModelConfig)
    cs.store(group="task", name=f"task{SCHEMA_SUFFIX}", node=TaskConfig)
    for name in variants.available():
        cls = variants.get(name)
        cs.store(group="variant", name=f"{name}{SCHEMA_SUFFIX}", node=cls.Config)
        if not (CONF_DIR / "variant" / f"{name}.yaml").exists():
            cs.store(group="variant", name=name, node=cls.Config(name=name))
    for name in variants.broken():  # composes; the run then fails with the plugin's load error
        cs.store(group="variant", name=name, node={"name": name})
    resolvers = {
        "peft_bench.variants": lambda: ",".join(variants.available()),
        "peft_bench.tasks": lambda source: ",".join(tasks_from(source)),
        "peft_bench.groups": help_groups,
        "peft_bench.selected_lr": selected_lr,
        "peft_bench.folder": folder_name,
    }
    for name, resolver in resolvers.items():
        OmegaConf.register_new_resolver(name, resolver, replace=True)


def compose(
    overrides: Sequence[str] = (), *, config_name: str | None = "train", return_hydra_config: bool = False
) -> DictConfig:
    """The config that ``python -m bench train <overrides>`` composes, in this process (every schema
    registered). ``config_name=None`` composes from the overrides alone (``+task=sst2``). Hydra's global
    state is cleared before and after, so calls never see each other."""
    register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = hydra_compose(
                config_name, overrides=list(overrides), return_hydra_config=return_hydra_config
            )
    finally:
        GlobalHydra.instance().clear()
    check_keys(cfg)
    return cfg


def check_keys(cfg: Mapping[str, Any]) -> None:
    """Raise ValueError (``unknown_key``) on the first key of ``cfg`` (composed or resolved) that no
    schema declares; the open sections (OPEN_SECTIONS) and an unknown variant are left to their checks."""
    sections: dict[str, type] = {k: v for k, v in CLOSED_SECTIONS.items() if isinstance(cfg.get(k), Mapping)}
    variant = cfg.get("variant")
    if isinstance(variant, Mapping) and variant.get("name") in variants.available():
        sections["variant"] = variants.get(variant["name"]).Config
    root = {f.name for f in dataclasses.fields(RootConfig)} | set(OPEN_SECTIONS)
    for key in cfg:
        if key not in root:
            raise ValueError(unknown_key(str(key), cfg[key], RootConfig))
    for section, schema in sections.items():
        fields = {f.name for f in dataclasses.fields(schema)}
        for key in cfg[section]:
            if key not in fields:
                raise ValueError(unknown_key(f"{section}.{key}", cfg[section][key], schema))


def unknown_key(key: str, value: Any, schema: type) -> str:
    """The error for ``key`` (dotted), not a field of ``schema``: it, its value and the valid keys closest
    to it (difflib), else them all."""
    prefix, _, name = key.rpartition(".")
    fields = sorted(f.name for f in dataclasses.fields(schema))
    close = difflib.get_close_matches(name, fields, n=3) or fields
    keys = [f"{prefix}.{f}" if prefix else f for f in close]
    hint = f"did you mean {' or '.join(keys)}?" if close != fields else f"valid keys: {', '.join(keys)}"
    return f"unknown key {key}={value} ({name!r} not in {schema.__name__!r}); {hint}"


def group_options(group: str) -> list[str]:
    """The options of a config group: its files in conf/ and its ConfigStore entries, schemas left out."""
    if group.startswith("hydra/"):
        from hydra.core.plugins import Plugins

        Plugins.instance()  # plugins (launchers, sweepers) store their configs when first loaded
    files = {p.stem for p in (CONF_DIR / group).glob("*.yaml")}
    try:
        stored = {Path(n).stem for n in ConfigStore.instance().list(group)}
    except OSError:  # no ConfigStore entry in this group
        stored = set()
    return sorted(n for n in files | stored if not n.endswith(SCHEMA_SUFFIX))


def groups() -> list[str]:
    """Every group a user chooses from: the folders of conf/ with options (not hydra/), and HYDRA_GROUPS.

    conf/variant_task/ has none of its own: its recipes sit in one folder per experiment, which picks them.
    """
    mine = sorted(
        p.name
        for p in CONF_DIR.iterdir()
        if p not in (CONF_DIR / "hydra", SELECTED_DIR) and any(p.glob("*.yaml"))
    )
    return [*mine, *HYDRA_GROUPS]


def help_groups() -> str:
    """One line per group, ``group: option, option, ...`` (``--help``)."""
    return "\n".join(f"{g}: {', '.join(group_options(g))}" for g in groups())


def group_config(group: str, name: str, schema: type[T]) -> T:
    """``conf/<group>/<name>.yaml`` merged into its schema, as ``<group>=<name>`` composes it."""
    path = CONF_DIR / group / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown {group} {name!r}; available: {', '.join(group_options(group))}")
    raw = OmegaConf.load(path)
    expected = [f"{group}{SCHEMA_SUFFIX}", "_self_"]
    if list(raw.pop("defaults", [])) != expected:
        raise ValueError(f"{path}: its defaults list must be {expected}")
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), raw))


def tasks_from(source: str) -> list[str]:
    """The conf/task files whose ``source`` is ``source`` (glue, vader, packaged, local)."""
    files = sorted(p.stem for p in (CONF_DIR / "task").glob("*.yaml"))
    names = [n for n in files if group_config("task", n, TaskConfig).source == source]
    if not names:
        raise ValueError(f"no task in {CONF_DIR / 'task'} has source {source!r}")
    return names


def folder_name(name: Any) -> str:
    """``name`` as one folder name; a ValueError when it holds a separator or ``..``, or starts oddly."""
    text = str(name)
    if not FOLDER_NAME.fullmatch(text) or ".." in text:
        raise ValueError(
            f"{text!r} cannot name a run folder (it comes from variant.name, task.name or experiment_name): "
            "use letters, digits and . _ = + -, start with a letter or digit, and no '..'"
        )
    return text


def selected_lr(name: str, task: str, variant: str) -> float | None:
    """The lr in ``conf/selected/<name>.yaml`` for (task, variant), or None when it lists none."""
    path = SELECTED_DIR / f"{name}.yaml"
    if not path.is_file():
        options = sorted(p.stem for p in SELECTED_DIR.glob("*.yaml"))
        raise ValueError(f"no selected lrs {name!r} ({path}); available: {', '.join(options) or '(none)'}")
    lr = (OmegaConf.load(path).get(task) or {}).get(variant)
    return None if lr is None else float(lr)
