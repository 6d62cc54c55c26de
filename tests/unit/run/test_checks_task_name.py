"""A task's name is its config file's (bench.run.checks.check_task_name): ``task.name=foo`` with SST-2's
config would label SST-2's data ``foo`` everywhere, so it is refused before anything loads."""

from __future__ import annotations

import pytest
from helpers.runs import TINY_RUN
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from bench.run import checks, distributed, runner
from bench.run.spec import RunSpec, task_choice

REFUSED = r"task.name='foo' does not match task=rt_polarity: task names come from conf/task/<name>.yaml; "


@pytest.fixture
def app(compose, tmp_path):
    """Factory: app(*overrides) -> the config a running ``bench train`` app hands the runner (Hydra's
    node removed, HydraConfig set, as Hydra does for each job); HydraConfig is cleared after the test."""

    def make(*overrides: str) -> DictConfig:
        args = [*TINY_RUN, f"paths.results={tmp_path}", *overrides]
        HydraConfig.instance().set_config(compose(args, return_hydra_config=True))
        return compose(args)

    yield make
    HydraConfig.instance().cfg = None


def test_a_name_other_than_the_config_files_is_refused_with_how_to_add_a_task():
    checks.check_task_name("sst2", "sst2")
    checks.check_task_name("foo", None)  # composed outside a Hydra app: nothing to compare with
    with pytest.raises(ValueError, match=r"task.name='foo' does not match task=sst2") as e:
        checks.check_task_name("foo", "sst2")
    assert "conf/task/sst2.yaml" in str(e.value) and "conf/task/foo.yaml" in str(e.value)
    assert "\n" not in str(e.value)


def test_the_choice_is_the_running_apps(app):
    assert task_choice() is None
    cfg = app("task.name=foo")
    assert task_choice() == "rt_polarity" and cfg.task.name == "foo"


def test_the_checks_refuse_another_tasks_config_before_anything_loads(app, tmp_path, monkeypatch):
    cfg = app("task.name=foo")
    spec = RunSpec.of(cfg, tmp_path / "r")
    assert spec.task_choice == "rt_polarity"
    with pytest.raises(ValueError, match=REFUSED):
        checks.check(spec, distributed.world())
    monkeypatch.setattr("bench.run.phases.load_data", lambda *a: pytest.fail("the data loaded"))
    with pytest.raises(ValueError, match=REFUSED):
        runner.run(cfg, tmp_path / "runs" / "foo")
    checks.check(RunSpec.of(app("task.name=rt_polarity"), tmp_path), distributed.world())  # the same name
