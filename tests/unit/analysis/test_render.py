"""bench.analysis.render: a leaderboard table as Markdown (with its notes), CSV and HTML."""

from __future__ import annotations

from io import StringIO

import pandas as pd
import pytest
from helpers.markdown import md_row

from bench.analysis import configurations, runs_table
from bench.analysis.render import csv_text, render, render_plain, selected_lrs_yaml


def test_render_markdown_csv_html(results):
    runs = runs_table.load_runs(results / "runs.csv")
    table = configurations.aggregate(runs)
    md = render(table, "md")
    assert "at the epoch selected" in md and "×100" in md and "Every configuration, unselected" in md
    assert "| avg |" not in md and "avg:" not in md
    line = next(x for x in md.splitlines() if "| sst2 | lora | roberta_base | lr=0.0005 r=8 |" in x)
    assert (
        "| 3 | 1 | accuracy | 92.00 | 887,042 | 0.707 | 2.00 | 92.00 |" in line
    )  # parameters beside the score
    back = pd.read_csv(StringIO(render(table, "csv")))
    assert back.columns.tolist() == table.columns.tolist()
    assert back.loc[
        back["task"].eq("sst2") & back["variant"].eq("full"), "mean_x100"
    ].item() == pytest.approx(94.3333)
    html = render(table, "html")
    assert '<table border="1" class="dataframe leaderboard">' in html
    assert "<td>94.33</td>" in html and "<td>92.00</td>" in html and "metric &#215;100" in html

    tuned = configurations.tuned_board(runs)
    md = render(tuned, "md")
    assert "Tuned: per (task, variant, model, budget)" in md and "Welch's t-test" in md
    assert "No average for lora, full, vera: missing some task." in md
    lora = md_row(md, "sst2", "lora")
    assert (lora["rank"], lora["hparams"], lora["mean_x100"], lora["ci95_x100"], lora["n"]) == (
        "2",
        "lr=0.001 r=8",
        "93.00",
        "25.41",  # t(0.975, 1) * 2.8284 / sqrt(2)
        "2",
    )
    assert (lora["tied"], lora["tuning_time_s"]) == ("yes", "600")  # both lrs: 5 completed runs x 120 s
    vera = md_row(md, "rte", "vera")
    assert (vera["hparams"], vera["mean_x100"], vera["tied"]) == ("(no completed run)", "-", "-")
    full = configurations.tuned_board(runs, full=True)
    back = pd.read_csv(StringIO(render(full, "csv")))
    assert back.columns.tolist() == full.columns.tolist()
    assert {"model", "lr", "grid", "grid_runs", "p_vs_best", "std_x100"} <= set(back.columns)
    sst2_lora = back[back["task"].eq("sst2") & back["variant"].eq("lora")].iloc[0]
    assert (sst2_lora["grid"], sst2_lora["grid_runs"], sst2_lora["failed"]) == (2, 7, 2)
    html = render(tuned, "html")
    assert "<td>93.00</td>" in html and "<td>25.41</td>" in html and "Welch&#x27;s t-test" in html


def test_render_unknown_format_lists_choices(results):
    table = configurations.aggregate(runs_table.load_runs(results / "runs.csv"))
    with pytest.raises(ValueError, match=r"unknown format 'xlsx'; choose one of md, csv, html"):
        render(table, "xlsx")


def test_a_csv_keeps_every_digit():
    """An lr as recorded (8e-05 never reads 0.0001), every float in full, counts whole; the tables show
    metrics with 2 decimals but the lr exact."""
    table = pd.DataFrame(
        {
            "task": ["rt", "rt"],
            "variant": ["full", "lora"],
            "lr": [8e-05, 1.23456789e-4],
            "mean_x100": [81.53333333333333, 2e-05],
            "trainable_params": pd.array([22713986, None], dtype="Int64"),
            "train_time_s": [1852.914, float("nan")],
        }
    )
    assert csv_text(table).splitlines() == [
        "task,variant,lr,mean_x100,trainable_params,train_time_s",
        "rt,full,8e-05,81.53333333333333,22713986,1852.914",
        "rt,lora,0.000123456789,2e-05,,",
    ]
    assert render(table, "csv") == csv_text(table)
    shown = render_plain(table, "md")
    assert "| rt | full | 8e-05 | 81.53 | 22,713,986 | 1,852.9 |" in shown
    assert "| rt | lora | 0.000123456789 | 0.00 | - | - |" in shown


def test_the_selected_lrs_are_written_exact():
    table = pd.DataFrame(
        {
            "task": ["rt", "rt"],
            "variant": ["full", "lora"],
            "model": ["m", "m"],
            "lr": [8e-05, 1.23456789e-4],
            "mean_x100": [80.0, 79.0],
            "dev_x100": [80.0, 79.0],
        }
    )
    text = selected_lrs_yaml(table, "results/x")
    assert "  full: 8e-05\n" in text and "  lora: 0.000123456789\n" in text
