"""The sweep-end Hydra callback: leaderboard files, printout, and the W&B Table (offline, read from disk)."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pandas as pd
import pytest
import wandb
from helpers.markdown import md_rows
from helpers.notices import notices
from helpers.results import write_results
from helpers.wandb_offline import offline_run, read_records
from hydra.utils import instantiate
from omegaconf import OmegaConf

from bench.analysis.runs_table import load_runs
from bench.results.sweep_callback import LeaderboardCallback, interrupted_summary, sweep_group

SWEEP = "2024-05-03_09-00-00_cola"  # the sweep of the cola runs in write_results


def sweep_config(root: Path, wandb_cfg: dict | None = None):
    """The parts of a composed sweep config the callback reads."""
    logger = {} if wandb_cfg is None else {"wandb": wandb_cfg}
    return OmegaConf.create(
        {
            "hydra": {"sweep": {"dir": str(root / "sweeps" / SWEEP), "subdir": "${hydra.job.num}"}},
            "paths": {"results": str(root), "runs_csv": str(root / "runs.csv")},
            "logger": logger,
        }
    )


def test_sweep_group_is_the_sweep_folder_name():
    assert sweep_group("results/sweeps/2024-05-03_09-00-00_lora-grid") == "2024-05-03_09-00-00_lora-grid"
    assert sweep_group(Path("/abs/sweeps/x/")) == "x"


def test_callback_yaml_instantiates_the_callback(compose):
    cfg = compose(["hydra/callbacks=leaderboard"], config_name=None, return_hydra_config=True)
    assert cfg.hydra.callbacks.leaderboard._target_ == "bench.results.sweep_callback.LeaderboardCallback"
    assert isinstance(instantiate(cfg.hydra.callbacks.leaderboard), LeaderboardCallback)


def test_multirun_end_writes_and_prints_the_sweep_leaderboard(tmp_path, capsys):
    write_results(tmp_path)
    LeaderboardCallback().on_multirun_end(sweep_config(tmp_path), config_name="train")
    sweep = tmp_path / "sweeps" / SWEEP
    md = (sweep / "leaderboard.md").read_text()
    rows = md_rows(md)  # the compact tuned view: each variant at its selected configuration
    assert [(r["rank"], r["task"], r["variant"], r["hparams"]) for r in rows] == [
        ("1", "cola", "full", "lr=2e-05"),
        ("2", "cola", "lora", "lr=0.0005 r=8"),
    ]
    lora = rows[1]
    assert (lora["mean_x100"], lora["ci95_x100"], lora["n"], lora["tied"]) == ("62.00", "4.97", "3", "yes")
    assert "sst2" not in md  # only the sweep's runs
    out = capsys.readouterr().out
    assert md in out and f"sweep leaderboard: {sweep / 'leaderboard.md'}" in out
    assert not (sweep / "wandb").exists()  # no W&B logger in the config


def test_multirun_end_logs_a_wandb_table(tmp_path, offline_wandb):
    write_results(tmp_path)
    wandb_cfg = {"project": "peft-bench-test", "entity": None, "mode": "offline"}
    config = sweep_config(tmp_path, wandb_cfg)
    config.experiment_name = "cola_grid"
    LeaderboardCallback().on_multirun_end(config)
    wandb.teardown()  # wait for wandb-core to flush the run's transaction log
    runs = list((tmp_path / "sweeps" / SWEEP / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    [table_file] = (runs[0] / "files" / "media" / "table").glob("leaderboard_*.table.json")
    table = json.loads(table_file.read_text())
    rows = [dict(zip(table["columns"], r, strict=True)) for r in table["data"]]
    assert [(r["variant"], r["n"], r["mean_x100"], r["rank"], r["selected"]) for r in rows] == [
        ("full", 2, 64.0, 1, True),
        ("lora", 3, 62.0, 2, True),
    ]
    csv_columns = pd.read_csv(tmp_path / "sweeps" / SWEEP / "leaderboard.csv").columns.tolist()
    assert table["columns"] == [*csv_columns, "config_key", "run_ids", "selected"]
    assert {"model", "lr", "std_x100", "ci95_x100", "p_vs_best", "tied", "tuning_time_s"} <= set(
        table["columns"]
    )
    assert [r["tied"] for r in rows] == [True, True]
    [log] = runs[0].glob("run-*.wandb")
    [run] = [r.run for r in read_records(log) if r.WhichOneof("record_type") == "run"]
    assert (run.project, run.run_group, run.job_type, run.display_name, run.run_id) == (
        "peft-bench-test",
        SWEEP,
        "leaderboard",
        "cola_grid-leaderboard",
        "leaderboard-cola_grid",
    )
    logged = offline_run(tmp_path / "sweeps" / SWEEP)
    [row] = logged["history"]
    assert (row["leaderboard/_type"], row["leaderboard/nrows"]) == ("table-file", 2)
    assert runs[0] / "files" / row["leaderboard/path"] == table_file
    assert logged["artifacts"]["cola_grid-leaderboard"]["type"] == "leaderboard"


def test_wandb_failure_only_warns(tmp_path, offline_wandb, monkeypatch, caplog):
    def broken_init(**kwargs):
        raise RuntimeError("no network")

    monkeypatch.setattr(wandb, "init", broken_init)
    write_results(tmp_path)
    LeaderboardCallback().on_multirun_end(
        sweep_config(tmp_path, {"project": "p", "entity": None, "mode": None})
    )
    assert "peft-bench: W&B logging of the sweep leaderboard failed: RuntimeError: no network\n" in notices(
        caplog
    )
    assert (tmp_path / "sweeps" / SWEEP / "leaderboard.csv").is_file()


def test_multirun_end_without_runs_of_the_sweep_warns_and_does_not_fail(tmp_path, caplog):
    """A sweep with no rows in the runs CSV (every run killed) ends normally, with a warning naming it."""
    write_results(tmp_path)
    cfg = sweep_config(tmp_path)
    cfg.hydra.sweep.dir = str(tmp_path / "sweeps" / "other")
    LeaderboardCallback().on_multirun_end(cfg)
    assert re.search(
        r"^peft-bench: no sweep leaderboard written: no runs of sweep .*other in .*runs.csv; sweeps there: ",
        notices(caplog),
        re.M,
    )
    assert not (tmp_path / "sweeps" / "other" / "leaderboard.md").exists()


def test_sweep_leaderboard_includes_runs_resumed_from_an_earlier_sweep(tmp_path):
    """A re-run sweep whose runs were skipped (resume) still lists them, found by config hash."""
    write_results(tmp_path)
    cfg = sweep_config(tmp_path)
    rerun = tmp_path / "sweeps" / "rerun"
    (rerun / "0_job").mkdir(parents=True)
    runs = load_runs(tmp_path / "runs.csv")
    done = runs[runs["status"] == "completed"].iloc[0]
    (rerun / "0_job" / "resumed.json").write_text(json.dumps({"config_hash": done["config_hash"]}))
    cfg.hydra.sweep.dir = str(rerun)
    LeaderboardCallback().on_multirun_end(cfg)
    table = (rerun / "leaderboard.csv").read_text()
    assert done["variant"] in table and done["task"] in table


def test_after_ctrl_c_the_running_sweep_names_its_unfinished_runs_and_the_command_that_resumes_it(tmp_path):
    command = "peft-bench train -m seed=0,1,2"
    assert interrupted_summary(command) == []  # no sweep has started in this process
    cfg = sweep_config(tmp_path)
    sweep = tmp_path / "sweeps" / SWEEP
    callback = LeaderboardCallback()
    callback.started = dt.datetime(2026, 12, 1, 13)
    callback.on_multirun_start(cfg, config_name="train")
    assert interrupted_summary(command)[-1] == (
        f"interrupted: sweep {sweep}, at no run; the same command resumes it (its completed runs are "
        f"skipped): {command}"
    )
    for name, status in [("0_a", "failed"), ("1_b", "completed"), ("2_c", "interrupted")]:
        (sweep / name).mkdir(parents=True)
        metrics = {"status": status, "started_at": "2026-12-01T13:00:05"}
        (sweep / name / "metrics.json").write_text(json.dumps(metrics))
    summary, line = interrupted_summary(command)
    assert summary.startswith("sweep: 2 runs did not complete (failed: 1, interrupted: 1), ")
    assert line == (
        f"interrupted: sweep {sweep}, at run {sweep / '2_c'}; the same command resumes it (its completed "
        f"runs are skipped): {command}"
    )
    with pytest.raises(SystemExit):  # the sweep ended (with failures): no longer running
        callback.on_multirun_end(cfg, config_name="train")
    assert interrupted_summary(command) == []
