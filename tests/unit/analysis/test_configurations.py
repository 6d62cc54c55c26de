"""bench.analysis.configurations: one row per configuration (hand-checked statistics, seeds, failures,
costs, ranks), the tuned view's averages, and the budgets of a task's rows compared and flagged.

The results folder is helpers/results.py's ``write_results`` (the ``results`` fixture); composed dora runs
are helpers/results.py's ``write_dora_runs``.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from helpers.results import without, write_dora_runs

from bench.analysis import configurations, runs_table
from bench.analysis.render import render
from bench.config.budget import budget_label


def row(table: pd.DataFrame, task: str, variant: str, hparams: str | None = None) -> pd.Series:
    sel = (table["task"] == task) & (table["variant"] == variant)
    if hparams is not None:
        sel &= table["hparams"] == hparams
    assert sel.sum() == 1, table[["task", "variant", "hparams"]]
    return table[sel].iloc[0]


def test_aggregate_statistics_seeds_and_failures(results):
    table = configurations.aggregate(runs_table.load_runs(results / "runs.csv"))
    lora = row(table, "sst2", "lora", "lr=0.0005 r=8")
    assert (lora["seeds"], lora["failed"]) == (3, 1)
    assert lora["mean_x100"] == pytest.approx(92.0)
    assert lora["std_x100"] == pytest.approx(2.0)
    assert lora["median_x100"] == pytest.approx(92.0)
    lora_hi = row(table, "sst2", "lora", "lr=0.001 r=8")
    assert (lora_hi["seeds"], lora_hi["failed"]) == (2, 1)
    assert (lora_hi["mean_x100"], lora_hi["std_x100"]) == pytest.approx((93.0, math.sqrt(8)))
    full = row(table, "sst2", "full")
    assert full["hparams"] == "lr=2e-05"
    assert (full["mean_x100"], full["std_x100"], full["median_x100"]) == pytest.approx(
        (94.0 + 1 / 3, 1.527525, 94.0)
    )
    vera = row(table, "rte", "vera")
    assert (vera["seeds"], vera["failed"]) == (0, 1)
    assert pd.isna(vera["mean_x100"]) and pd.isna(vera["rank"])


def test_aggregate_other_metrics_and_costs(results):
    table = configurations.aggregate(runs_table.load_runs(results / "runs.csv"))
    mrpc = row(table, "mrpc", "lora")
    assert (mrpc["main_metric"], mrpc["mean_x100"], mrpc["f1_x100"]) == (
        "accuracy",
        pytest.approx(89.0),
        pytest.approx(92.0),
    )
    assert pd.isna(row(table, "sst2", "full")["f1_x100"])
    lora = row(table, "sst2", "lora", "lr=0.0005 r=8")
    assert lora["trainable_params"] == 887_042
    assert (lora["pct_trainable"], lora["peak_memory_mb"], lora["train_time_s"]) == (0.7066, 2900.0, 120.0)
    assert (lora["train_samples_per_s"], lora["adapter_mb"]) == (400.0, 1.13)


def test_ranks_and_tuned_averages(results):
    """--configs ranks every configuration and has no average (averaging the best configuration per task,
    picked on test, was unfair); the tuned view averages only the variants with a selected row on every
    task of the table."""
    runs = runs_table.load_runs(results / "runs.csv")
    table = configurations.aggregate(runs)
    sst2 = table[table["task"] == "sst2"]
    assert sst2[["variant", "hparams", "rank"]].values.tolist() == [
        ["full", "lr=2e-05", 1],
        ["lora", "lr=0.001 r=8", 2],
        ["lora", "lr=0.0005 r=8", 3],
    ]
    assert (row(table, "cola", "full")["rank"], row(table, "cola", "lora")["rank"]) == (1, 2)
    assert table["task"].tolist() == ["cola", "cola", "mrpc", "rte", "sst2", "sst2", "sst2"]  # alphabetical
    assert "tasks" not in table.columns

    tuned = configurations.tuned_board(runs)  # rte (vera only) and mrpc (lora only): nobody ran every task
    assert "avg" not in set(tuned["task"]) and sorted(tuned.attrs["incomplete"]) == ["full", "lora", "vera"]
    assert row(tuned, "sst2", "lora")["hparams"] == "lr=0.001 r=8"  # legacy runs: selected on test

    tuned = configurations.tuned_board(without(results / "runs.csv", "rte"))
    assert tuned.attrs["incomplete"] == ["full"]  # no mrpc run
    assert tuned["task"].tolist()[-1] == "avg" and (tuned["task"] == "avg").sum() == 1
    avg_lora = row(tuned, "avg", "lora")
    assert avg_lora["mean_x100"] == pytest.approx((93.0 + 62.0 + 89.0) / 3)  # the selected lr per task
    assert (avg_lora["tasks"], avg_lora["rank"]) == ("cola,mrpc,sst2", 1)

    tuned = configurations.tuned_board(without(results / "runs.csv", "rte", "mrpc"))
    assert tuned.attrs["incomplete"] == []
    assert tuned["task"].tolist() == ["cola", "cola", "sst2", "sst2", "avg", "avg"]  # average last
    avg_full, avg_lora = row(tuned, "avg", "full"), row(tuned, "avg", "lora")
    assert avg_full["mean_x100"] == pytest.approx((94.0 + 1 / 3 + 64.0) / 2)
    assert avg_lora["mean_x100"] == pytest.approx((93.0 + 62.0) / 2)
    assert (avg_full["tasks"], avg_lora["tasks"]) == ("cola,sst2", "cola,sst2")
    assert (avg_full["rank"], avg_lora["rank"]) == (1, 2)  # the same tasks: compared
    assert avg_lora["tuning_time_s"] == pytest.approx(360.0 + 600.0)  # cola + both sst2 lrs


def test_aggregate_one_task_has_no_average(results):
    table = configurations.aggregate(runs_table.load_runs(results / "runs.csv"), task="cola")
    assert table["task"].tolist() == ["cola", "cola"]
    assert "tasks" not in table.columns


def test_the_issues_three_dora_runs_are_three_rows_labelled_by_what_differs(compose, tmp_path):
    """Seed 0 three times, differing in train.weight_decay and model.max_length: not "3 seeds, std 0"."""
    csv_path = write_dora_runs(
        compose,
        tmp_path,
        [
            ([], 0, 0.80),
            (["train.weight_decay=0.1"], 0, 0.80),
            (["model.max_length=64"], 0, 0.80),
        ],
    )
    table = configurations.aggregate(runs_table.load_runs(csv_path))
    assert table["seeds"].tolist() == [1, 1, 1]
    assert sorted(table["hparams"]) == [
        "lr=0.0005 r=8 model.max_length=128 train.weight_decay=0.01",
        "lr=0.0005 r=8 model.max_length=128 train.weight_decay=0.1",
        "lr=0.0005 r=8 model.max_length=64 train.weight_decay=0.01",
    ]


@pytest.mark.parametrize(
    "override, shown",
    [
        ("train.weight_decay=0.1", "train.weight_decay=0.1"),
        ("model.max_length=64", "model.max_length=64"),
        ("task.max_eval_samples=200", "task.max_eval_samples=200"),
        ("variant.dropout=0.1", "variant.dropout=0.1"),
        ("task.split_seed=1", "task.split_seed=1"),  # in no hparam and no budget
        ("train.max_steps=10", "train.max_steps=10"),
    ],
)
def test_runs_differing_in_one_setting_never_share_a_row(compose, tmp_path, override, shown):
    csv_path = write_dora_runs(
        compose, tmp_path, [([], 0, 0.80), ([], 1, 0.84), ([override], 0, 0.90), ([override], 1, 0.90)]
    )
    table = configurations.aggregate(runs_table.load_runs(csv_path))
    assert len(table) == 2 and table["seeds"].tolist() == [2, 2]
    other, base = table.iloc[0], table.iloc[1]  # ranked: the override scored higher
    assert shown in other["hparams"] and shown not in base["hparams"]
    assert other["hparams"].startswith("lr=0.0005 r=8 ")
    assert (base["mean_x100"], base["std_x100"]) == pytest.approx((82.0, math.sqrt(8)))
    assert (other["mean_x100"], other["std_x100"]) == (pytest.approx(90.0), 0.0)


def test_runs_differing_only_in_the_seed_share_a_row(compose, tmp_path):
    csv_path = write_dora_runs(compose, tmp_path, [([], 0, 0.80), ([], 1, 0.82), ([], 2, 0.84)])
    table = configurations.aggregate(runs_table.load_runs(csv_path))
    assert table[["hparams", "seeds", "failed"]].values.tolist() == [["lr=0.0005 r=8", 3, 0]]
    assert (table["mean_x100"].item(), table["std_x100"].item()) == pytest.approx((82.0, 2.0))
    assert "budget" not in table.columns  # one budget: nothing to flag
    assert "budgets differ" not in render(table, "md")


def test_mismatched_budgets_are_flagged(compose, tmp_path):
    csv_path = write_dora_runs(
        compose,
        tmp_path,
        [
            (["task.max_eval_samples=346"], 0, 0.80),
            (["task.max_eval_samples=346", "variant.r=4"], 0, 0.79),
            (["task.max_eval_samples=200"], 0, 0.85),
        ],
    )
    table = configurations.aggregate(runs_table.load_runs(csv_path))
    assert table[["hparams", "budget"]].values.tolist() == [
        ["lr=0.0005 r=8 task.max_eval_samples=200", "! 3 ep x bs 32, len 128, all/200 ex"],
        ["lr=0.0005 r=8 task.max_eval_samples=346", "3 ep x bs 32, len 128, all/346 ex"],
        ["lr=0.0005 r=4 task.max_eval_samples=346", "3 ep x bs 32, len 128, all/346 ex"],
    ]
    md = render(table, "md")
    assert (
        "> budgets differ on rt_polarity: 3 ep x bs 32, len 128, all/346 ex (2 rows); "
        "3 ep x bs 32, len 128, all/200 ex (1 row) — not a like-for-like comparison" in md
    )
    assert "| ! 3 ep x bs 32, len 128, all/200 ex |" in md
    assert "budgets differ" in render(table, "html")


def test_matched_budgets_are_not_flagged_whatever_else_differs(compose, tmp_path):
    csv_path = write_dora_runs(
        compose,
        tmp_path,
        [
            (["train.epochs=2", "train.batch_size=16"], 0, 0.8),
            (["train.epochs=2", "train.batch_size=16", "train.weight_decay=0"], 0, 0.9),
        ],
    )
    table = configurations.aggregate(runs_table.load_runs(csv_path))
    assert len(table) == 2 and "budget" not in table.columns
    assert "budgets differ" not in render(table, "md")


def test_budget_of_an_older_run_is_what_its_hparams_recorded(results):
    runs = runs_table.load_runs(results / "runs.csv")
    lora = runs[runs["variant"].eq("lora")].iloc[0]
    assert budget_label(configurations.run_budget(lora)) == "3 ep x bs 16, len ?, all/? ex"
