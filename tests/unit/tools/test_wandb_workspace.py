"""bench.tools.wandb_workspace: the W&B workspace built in code, checked on the objects it builds and the
spec it would send (nothing is saved: no network)."""

from __future__ import annotations

import json
import sys

import pytest
import wandb_workspaces.reports.v2 as wr
import wandb_workspaces.workspaces as ws

from bench.tools import wandb_workspace
from bench.tools.wandb_workspace import build_workspace, main


def panels(workspace) -> dict[str, list]:
    return {s.name: s.panels for s in workspace.sections}


def test_the_workspace_groups_by_configuration_and_filters_one_experiment():
    workspace = build_workspace("me", "peft-bench", "compare")
    assert (workspace.entity, workspace.project, workspace.name) == (
        "me",
        "peft-bench",
        "peft-bench: compare",
    )
    runset = workspace.runset_settings
    assert [g.name for g in runset.groupby] == ["config_key"]  # a configuration's seeds in one group
    spec = workspace._spec["spec"]["section"]["runSets"][0]
    assert spec["grouping"] == [{"section": "config", "name": "config_key.value"}]
    assert spec["filters"]["filters"] == [
        {"key": {"section": "config", "name": "experiment"}, "op": "=", "value": "compare", "disabled": False}
    ]
    assert build_workspace("me", "p").runset_settings.filters == ""  # every run of the project


def test_the_workspace_shows_the_leaderboard_cost_lr_and_curves():
    sections = panels(build_workspace("me", "peft-bench", "compare"))
    assert list(sections) == ["Tuned leaderboard", "Quality against cost", "Learning rate", "Curves"]
    [table] = sections["Tuned leaderboard"]
    assert isinstance(table, wr.WeavePanelSummaryTable) and table.table_name == "leaderboard"
    costs = sections["Quality against cost"]
    assert [(p.x.name, p.y.name, p.log_x) for p in costs] == [
        ("trainable_params", "score", True),
        ("peak_memory_mb", "score", True),
        ("train_time_s", "score", True),
    ]
    lr, parallel = sections["Learning rate"]
    assert (type(lr.x), lr.x.name, lr.y.name, lr.log_x) == (wr.Config, "lr", "dev_score", True)
    assert [(type(c.metric), c.metric.name) for c in parallel.columns] == [
        (wr.Config, "variant.name"),
        (wr.Config, "task.name"),
        (wr.Config, "lr"),
        (wr.SummaryMetric, "dev_score"),
        (wr.SummaryMetric, "score"),
    ]
    dev, loss = sections["Curves"]  # the axes the W&B sink defines; seeds averaged per configuration
    assert (dev.x, dev.metric_regex, loss.x, loss.y) == ("epoch", "^dev/", "step", ["train/loss"])
    assert {(p.groupby.name, p.groupby_aggfunc) for p in (dev, loss)} == {("config_key", "mean")}


def test_dry_run_prints_the_spec_and_saves_nothing(monkeypatch, capsys):
    monkeypatch.setattr(ws.Workspace, "save", lambda self: pytest.fail("saved on a dry run"))
    assert main(["--entity", "me", "--project", "p", "--experiment", "compare", "--dry-run"]) == 0
    spec = json.loads(capsys.readouterr().out)
    assert (spec["entity"], spec["project"], spec["displayName"]) == ("me", "p", "peft-bench: compare")


def test_without_dry_run_the_workspace_is_saved(monkeypatch, capsys):
    saved = []
    monkeypatch.setattr(ws.Workspace, "save", lambda self: saved.append(self) or self)
    monkeypatch.setattr(ws.Workspace, "url", property(lambda self: "https://example/view"))
    monkeypatch.setenv("WANDB_ENTITY", "team")
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    assert main([]) == 0
    [workspace] = saved
    assert (workspace.entity, workspace.project) == ("team", "peft-bench")
    assert capsys.readouterr().out == "saved: https://example/view\n"


def test_an_entity_is_required(monkeypatch, capsys):
    monkeypatch.delenv("WANDB_ENTITY", raising=False)
    with pytest.raises(SystemExit):
        main(["--dry-run"])
    assert "--entity is required (or set WANDB_ENTITY)" in capsys.readouterr().err


def test_without_wandb_workspaces_installed_one_line_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb_workspaces.workspaces", None)
    with pytest.raises(SystemExit, match=r"pip install 'peft-bench\[wandb-workspaces\]'"):
        wandb_workspace.build_workspace("me", "p")
