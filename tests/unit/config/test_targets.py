"""bench.config.targets: a config's ``_target_`` names one of the project's components or one a plugin
declares through an entry point, checked at any depth before anything is instantiated; the command line's
``hydra.callbacks`` and ``logger`` checked before Hydra starts."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest
from omegaconf import OmegaConf

from bench.config import targets
from bench.config.store import CONF_DIR, register_configs

WANDB = "bench.results.wandb_sink.WandbSink"
OPEN = ["+hydra.callbacks.x._target_=builtins.open", "+hydra.callbacks.x.mode=w"]


def declare(monkeypatch, group: str, *values: str) -> None:
    """Installed plugins that declare ``values`` (``module:attr``) in the entry-point group ``group``."""
    eps = [EntryPoint(name=f"p{i}", value=v, group=group) for i, v in enumerate(values)]
    monkeypatch.setattr(targets, "entry_points", lambda group: [ep for ep in eps if ep.group == group])


@pytest.mark.parametrize(
    ("group", "folder"), [(targets.SINKS, "logger"), (targets.CALLBACKS, "hydra/callbacks")]
)
def test_every_target_the_project_ships_is_allowed(group, folder):
    shipped = [
        (key, target)
        for path in sorted((CONF_DIR / folder).glob("*.yaml"))
        for key, target in targets.targets(OmegaConf.load(path), path.stem)
    ]
    assert [t for _, t in shipped] and {t for _, t in shipped} <= set(targets.allowed(group))


def test_a_plugin_declares_its_targets_through_an_entry_point(monkeypatch):
    declare(monkeypatch, targets.SINKS, "their_sinks.mlflow:MlflowSink", "their_sinks")  # a module: no target
    assert targets.allowed(targets.SINKS) == [
        "bench.results.wandb_sink.WandbSink",
        "their_sinks.mlflow.MlflowSink",
    ]
    assert targets.allowed(targets.CALLBACKS) == ["bench.results.sweep_callback.LeaderboardCallback"]
    targets.check({"x": {"_target_": "their_sinks.mlflow.MlflowSink"}}, "logger", targets.SINKS)


@pytest.mark.parametrize(
    ("node", "key", "target"),
    [
        ({"x": {"_target_": "builtins.open", "file": "F"}}, "logger.x._target_", "builtins.open"),
        ({"_target_": "os.system"}, "logger._target_", "os.system"),
        (  # nested: Hydra would instantiate it while building an allowed one
            {"wandb": {"_target_": WANDB, "tags": [{"_target_": "os.getcwd"}]}},
            "logger.wandb.tags[0]._target_",
            "os.getcwd",
        ),
    ],
)
def test_any_other_target_is_refused_naming_it_and_the_allowed_ones(node, key, target):
    with pytest.raises(ValueError) as e:
        targets.check(OmegaConf.create(node), "logger", targets.SINKS)
    assert str(e.value) == (
        f"{key}={target!r} is not allowed: a config chooses among the project's components and those that "
        "plugins declare (entry-point group peft_bench.sinks); allowed: bench.results.wandb_sink.WandbSink"
    )


@pytest.mark.parametrize(
    "argv",
    [
        [*OPEN, "+hydra.callbacks.x.file=F"],
        ["-m", "seed=0,1", *OPEN, "+hydra.callbacks.x.file=F"],
        ["+logger.x._target_=builtins.open", "+logger.x.file=F", "+logger.x.mode=w"],
    ],
    ids=["callback", "callback in a sweep", "logger"],
)
def test_the_command_line_is_checked_before_hydra_instantiates_anything(tmp_path, argv):
    register_configs()  # as bench.run.train does on import
    victim = tmp_path / "F"
    victim.write_text("kept")
    argv = [a.replace("=F", f"={victim}") for a in argv]
    with pytest.raises(ValueError, match=r"_target_='builtins.open' is not allowed: .*; allowed: bench\."):
        targets.check_command(argv, CONF_DIR)
    assert victim.read_text() == "kept"


def test_the_shipped_configs_pass_and_rerunning_a_pickle_is_refused():
    register_configs()
    targets.check_command([], CONF_DIR)
    targets.check_command(["-m", "variant=lora,dora", "logger=wandb"], CONF_DIR)
    targets.check_command(["--cfg", "job", *OPEN], CONF_DIR)  # prints the config: nothing instantiated
    with pytest.raises(ValueError, match="--experimental-rerun is not supported: it unpickles a file"):
        targets.check_command(["--experimental-rerun", "config.pickle"], CONF_DIR)
