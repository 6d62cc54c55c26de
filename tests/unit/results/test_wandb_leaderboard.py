"""bench.results.wandb_leaderboard: the experiment's sweep-end W&B run (offline, read back from disk), one
per experiment whatever the number of sweep ends, and its table: every configuration, run ids, selected."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import wandb
from helpers.results import write_results
from helpers.wandb_offline import read_run

from bench.analysis.sweep_leaderboard import sweep_runs
from bench.results.runs_csv import run_row
from bench.results.wandb_leaderboard import leaderboard_run_id, leaderboard_table, log_leaderboard

SWEEP = "2024-05-03_09-00-00_cola"  # the sweep of the cola runs in write_results
WANDB = {"project": "peft-bench-test", "entity": None, "mode": "offline"}


def add_candidate(root: Path) -> None:
    """A second cola lora configuration in the sweep, lr 1e-3, worse on every seed (not selected); its
    runs logged to W&B."""
    sweep = root / "sweeps" / SWEEP
    lines = []
    for seed, score in enumerate((0.50, 0.52, 0.54)):
        run_dir = sweep / f"9{seed}_lora-cola-s{seed}"
        metrics = json.loads(next(sweep.glob(f"*_lora-cola-s{seed}")).joinpath("metrics.json").read_text())
        metrics.update(
            run_dir=str(run_dir),
            config_hash=f"h-cola-lora-1e-3-{seed}",
            config_key="k-cola-lora-1e-3",
            best={"matthews_correlation": score},
            hparams=metrics["hparams"] | {"lr": 1e-3},
        )
        (run_dir / "wandb" / f"offline-run-20240503_10000{seed}-id1e3s{seed}").mkdir(parents=True)
        (run_dir / "metrics.json").write_text(json.dumps(metrics))
        lines.append(run_row(metrics))
    with (root / "runs.csv").open("a", newline="") as f:
        csv.DictWriter(f, fieldnames=list(lines[0])).writerows(lines)


def test_the_run_id_is_stable_per_experiment_and_one_w_and_b_accepts():
    assert leaderboard_run_id("compare") == "leaderboard-compare"
    assert leaderboard_run_id("a:b,c#d") == "leaderboard-a_b_c_d"


def test_the_table_holds_every_configuration_its_w_and_b_runs_and_which_one_the_tuning_selected(tmp_path):
    write_results(tmp_path)
    add_candidate(tmp_path)
    sweep = tmp_path / "sweeps" / SWEEP
    lora = sorted(sweep.glob("*_lora-cola-s*"))[:3]  # the selected lora configuration's runs (lr 5e-4)
    for i, run_dir in enumerate(lora):  # two W&B runs from one folder: the latest counts
        (run_dir / "wandb" / f"run-20240503_09000{i}-old{i}").mkdir(parents=True)
        (run_dir / "wandb" / f"offline-run-20240503_09100{i}-sel{i}").mkdir(parents=True)
    table = leaderboard_table(sweep_runs(sweep, tmp_path / "runs.csv"), sweep, tmp_path)
    rows = table[["variant", "lr", "rank", "n", "mean_x100", "selected", "config_key", "run_ids"]]
    assert rows.astype(object).where(rows.notna(), None).values.tolist() == [
        ["full", 2e-5, 1, 2, 64.0, True, "", ""],  # recorded before config_key: none
        ["lora", 5e-4, 2, 3, 62.0, True, "", "sel0 sel1 sel2"],
        ["lora", 1e-3, None, 3, 52.0, False, "k-cola-lora-1e-3", "id1e3s0 id1e3s1 id1e3s2"],
    ]
    assert table["ci95_x100"].notna().all()  # the candidate's too
    assert list(table.columns[-3:]) == ["config_key", "run_ids", "selected"]


def test_every_sweep_end_of_an_experiment_updates_its_one_run_and_versions_its_table(tmp_path, offline_wandb):
    write_results(tmp_path)
    sweep = tmp_path / "sweeps" / SWEEP
    runs = sweep_runs(sweep, tmp_path / "runs.csv")
    log_leaderboard(runs, sweep, tmp_path / "runs.csv", "cola_grid", WANDB)
    add_candidate(tmp_path)  # a later stage of the same experiment
    log_leaderboard(
        sweep_runs(sweep, tmp_path / "runs.csv"), sweep, tmp_path / "runs.csv", "cola_grid", WANDB
    )
    wandb.teardown()
    logged = [read_run(f) for f in sorted((sweep / "wandb").glob("offline-run-*/run-*.wandb"))]
    assert len(logged) == 2  # offline, each sweep end writes a file; online, they are one run
    assert {(r["id"], r["name"], r["job_type"], r["group"]) for r in logged} == {
        ("leaderboard-cola_grid", "cola_grid-leaderboard", "leaderboard", SWEEP)
    }
    assert [r["config"]["experiment"] for r in logged] == ["cola_grid", "cola_grid"]
    assert [r["history"][0]["leaderboard/nrows"] for r in logged] == [2, 3]
    artifacts = [r["artifacts"]["cola_grid-leaderboard"] for r in logged]
    assert [(a["type"], a["metadata"], a["files"]) for a in artifacts] == [
        ("leaderboard", {"sweep": SWEEP}, ["leaderboard.table.json"])
    ] * 2
