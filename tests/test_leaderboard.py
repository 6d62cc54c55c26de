"""The leaderboard: aggregation (hand-checked numbers), rendering, published numbers, sweeps and errors.

The results folder it reads is helpers/results.py's ``write_results`` (shared with the report and
callback tests).
"""

from __future__ import annotations

import math
from io import StringIO
from pathlib import Path

import pandas as pd
import pytest
from helpers.results import RUNS, write_results

from bench import leaderboard


@pytest.fixture
def results(tmp_path: Path) -> Path:
    write_results(tmp_path)
    return tmp_path


def row(table: pd.DataFrame, task: str, variant: str, hparams: str | None = None) -> pd.Series:
    sel = (table["task"] == task) & (table["variant"] == variant)
    if hparams is not None:
        sel &= table["hparams"] == hparams
    assert sel.sum() == 1, table[["task", "variant", "hparams"]]
    return table[sel].iloc[0]


def test_load_runs_keeps_latest_completed_row_per_config_hash(results):
    runs = leaderboard.load_runs(results / "leaderboard.csv")
    assert len(runs) == len(RUNS) - 2
    seed0 = runs[runs["config_hash"] == "h-sst2-lora-5e-4-0"]
    assert seed0[["status", "score"]].values.tolist() == [["completed", 0.90]]
    assert runs["hparams"].map(type).eq(dict).all()


def test_aggregate_statistics_seeds_and_failures(results):
    table = leaderboard.aggregate(leaderboard.load_runs(results / "leaderboard.csv"))
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
    table = leaderboard.aggregate(leaderboard.load_runs(results / "leaderboard.csv"))
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


def test_ranks_and_glue_average(results):
    table = leaderboard.aggregate(leaderboard.load_runs(results / "leaderboard.csv"))
    sst2 = table[table["task"] == "sst2"]
    assert sst2[["variant", "hparams", "rank"]].values.tolist() == [
        ["full", "lr=2e-05", 1],
        ["lora", "lr=0.001 r=8", 2],
        ["lora", "lr=0.0005 r=8", 3],
    ]
    assert (row(table, "cola", "full")["rank"], row(table, "cola", "lora")["rank"]) == (1, 2)
    assert table["task"].tolist()[:3] == ["cola", "cola", "sst2"]  # GLUE order, average last
    avg_lora, avg_full = row(table, "avg", "lora"), row(table, "avg", "full")
    assert avg_lora["mean_x100"] == pytest.approx((93.0 + 62.0 + 89.0) / 3)  # best lr per task
    assert avg_lora["tasks"] == "cola,sst2,mrpc"
    assert avg_full["mean_x100"] == pytest.approx((94.0 + 1 / 3 + 64.0) / 2)
    assert avg_full["tasks"] == "cola,sst2"
    assert (avg_lora["rank"], avg_full["rank"]) == (1, 1)  # different task sets: not compared
    assert not (table["variant"].eq("vera") & table["task"].eq("avg")).any()


def test_aggregate_one_task_has_no_average(results):
    table = leaderboard.aggregate(leaderboard.load_runs(results / "leaderboard.csv"), task="cola")
    assert table["task"].tolist() == ["cola", "cola"]
    assert "tasks" not in table.columns


def test_render_markdown_csv_html(results):
    table = leaderboard.aggregate(leaderboard.load_runs(results / "leaderboard.csv"))
    md = leaderboard.render(table, "md")
    assert "score = main metric at the best epoch, as the papers report" in md
    assert "×100" in md and "tasks present only" in md
    line = next(x for x in md.splitlines() if "| sst2 | lora | roberta_base | lr=0.0005 r=8 |" in x)
    assert "| 3 | 1 | accuracy | 92.00 | 2.00 | 92.00 |" in line and "| 887,042 |" in line
    back = pd.read_csv(StringIO(leaderboard.render(table, "csv")))
    assert back.columns.tolist() == table.columns.tolist()
    assert back.loc[
        back["task"].eq("sst2") & back["variant"].eq("full"), "mean_x100"
    ].item() == pytest.approx(94.3333)
    html = leaderboard.render(table, "html")
    assert '<table border="1" class="dataframe leaderboard">' in html
    assert (
        "<td>94.33</td>" in html
        and "<td>81.33</td>" in html
        and "best epoch" in html
        and "metric &#215;100" in html
    )


def test_render_unknown_format_lists_choices(results):
    table = leaderboard.aggregate(leaderboard.load_runs(results / "leaderboard.csv"))
    with pytest.raises(ValueError, match=r"unknown format 'xlsx'; choose one of md, csv, html"):
        leaderboard.render(table, "xlsx")


def test_with_reference_published_numbers(results, capsys):
    leaderboard.main(["--results", str(results), "--with-reference", "--format", "csv"])
    table = pd.read_csv(StringIO(capsys.readouterr().out))
    ours = table[table["source"] == "ours"]
    sst2_lora = ours[ours["task"].eq("sst2") & ours["variant"].eq("lora")]
    assert sst2_lora["published"].tolist() == [95.1, 95.1]
    assert "LoRA" in sst2_lora["published_source"].iloc[0]
    assert ours.loc[ours["task"].eq("cola") & ours["variant"].eq("full"), "published"].item() == 63.6
    assert ours.loc[ours["task"].eq("avg"), "published"].isna().all()  # our average covers 2-3 tasks, not 8
    ref = table[table["source"] == "reference"].set_index(["task", "variant", "model"])
    assert ref.loc[("qqp", "lora", "roberta_base"), "published"] == 90.8
    rte_vera = ours[ours["task"].eq("rte") & ours["variant"].eq("vera")]  # failed, still beside the paper
    assert rte_vera[["seeds", "failed", "published"]].values.tolist() == [[0, 1, 78.7]]
    assert ref.loc[("avg", "adalora", "deberta_v3_base"), "published"] == 89.31
    assert ref.loc[("avg", "lora", "roberta_base"), "published"] == 87.2
    assert ref.loc[("cola", "vera", "roberta_base"), "trainable_params"] == 43_000


def test_with_reference_one_task(results, capsys):
    leaderboard.main(["--results", str(results), "--with-reference", "--task", "cola"])
    md = capsys.readouterr().out
    assert "| cola | vera | roberta_base | reference |" in md and "65.60" in md
    assert "sst2" not in md.split("| rank |")[1]


def test_reference_tables_hold_the_published_numbers():
    ref = leaderboard.load_reference(leaderboard.REPO_REFERENCE)
    by = ref.set_index(["task", "variant", "model"])["score"]
    roberta = {
        "mnli": (87.6, 87.5),
        "sst2": (94.8, 95.1),
        "mrpc": (90.2, 89.7),
        "cola": (63.6, 63.4),
        "qnli": (92.8, 93.3),
        "qqp": (91.9, 90.8),
        "rte": (78.7, 86.6),
        "stsb": (91.2, 91.5),
        "avg": (86.4, 87.2),
    }
    for task, (full, lora) in roberta.items():
        assert (by[(task, "full", "roberta_base")], by[(task, "lora", "roberta_base")]) == (full, lora)
    vera = {"sst2": 94.6, "mrpc": 89.5, "cola": 65.6, "qnli": 91.8, "rte": 78.7, "stsb": 90.7}
    assert {t: by[(t, "vera", "roberta_base")] for t in vera} == vera
    assert [by[("avg", v, "deberta_v3_base")] for v in ("full", "lora", "adalora")] == [88.09, 88.34, 89.31]
    assert ref["source"].str.contains(r"Table \d").all()
    assert set(ref["task"]) <= {*leaderboard.GLUE_TASKS, "avg"}


def test_cli_writes_out_file(results, capsys):
    out = results / "tables" / "board.html"
    assert leaderboard.main(["--results", str(results), "--format", "html", "--out", str(out)]) == 0
    assert "<td>92.00</td>" in out.read_text()
    assert f"wrote {out}" in capsys.readouterr().err


def test_missing_csv_says_how_to_produce_one(tmp_path, capsys):
    with pytest.raises(SystemExit):
        leaderboard.main(["--results", str(tmp_path)])
    err = capsys.readouterr().err
    assert f"no leaderboard CSV at {tmp_path / 'leaderboard.csv'}" in err and "python -m bench.train" in err


def test_unknown_task_lists_tasks_present(results, capsys):
    with pytest.raises(SystemExit):
        leaderboard.main(["--results", str(results), "--task", "sst-2"])
    assert "unknown task 'sst-2'; tasks in the leaderboard: cola, sst2, mrpc, rte" in capsys.readouterr().err


def test_unknown_format_on_the_command_line(results, capsys):
    with pytest.raises(SystemExit):
        leaderboard.main(["--results", str(results), "--format", "xlsx"])
    assert "invalid choice: 'xlsx' (choose from" in capsys.readouterr().err


def test_not_a_leaderboard_names_missing_columns(tmp_path):
    (tmp_path / "x.csv").write_text("task,score\nsst2,0.9\n")
    with pytest.raises(ValueError, match="missing columns timestamp, run_name, status"):
        leaderboard.load_runs(tmp_path / "x.csv")


def test_write_sweep_leaderboard_uses_only_the_sweeps_rows(results):
    sweep = results / "sweeps" / "2024-05-03_09-00-00_cola"
    md = leaderboard.write_sweep_leaderboard(sweep, results / "leaderboard.csv")
    assert md == sweep / "leaderboard.md"
    text = md.read_text()
    assert text.startswith("# Leaderboard of sweep 2024-05-03_09-00-00_cola")
    assert (
        "| cola | full | roberta_base | lr=2e-05 | 2 | 0 | matthews_correlation | 64.00 | 1.41 | 64.00 |"
        in text
    )
    assert "sst2" not in text
    table = pd.read_csv(sweep / "leaderboard.csv")
    assert table[["variant", "seeds", "mean_x100"]].values.tolist() == [["full", 2, 64.0], ["lora", 3, 62.0]]


def test_write_sweep_leaderboard_unknown_sweep(results):
    with pytest.raises(ValueError, match=r"no runs of sweep .*elsewhere.*; sweeps there: .*_cola"):
        leaderboard.write_sweep_leaderboard(results / "elsewhere", results / "leaderboard.csv")
