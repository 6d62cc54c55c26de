"""The leaderboard: aggregation (hand-checked numbers), rendering, published numbers, sweeps and errors.

The results folder it reads is helpers/results.py's ``write_results`` (runs.csv + run folders, shared
with the report and callback tests).
"""

from __future__ import annotations

import json
import math
from io import StringIO
from pathlib import Path

import pandas as pd
import pytest
from helpers.results import RUNS, composed_run, write_results, write_runs
from omegaconf import OmegaConf
from scipy import stats

from bench.analysis import configurations, leaderboard, published, runs_table
from bench.analysis.diff import differences
from bench.analysis.render import render
from bench.analysis.sweep_leaderboard import write_sweep_leaderboard
from bench.config.budget import BUDGET, budget_label
from bench.config.hashing import HASH_IGNORED, config_hash, config_key, config_settings
from bench.results.columns import RUNS_COLUMNS
from bench.results.runs_csv import run_row


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


def md_rows(text: str) -> list[dict[str, str]]:
    """The rows of the first Markdown table in ``text``, as {column: cell}."""
    lines = [x for x in text.splitlines() if x.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split(" | ")]
    return [dict(zip(header, (c.strip() for c in x.strip("|").split(" | ")), strict=True)) for x in lines[1:]]


def md_row(text: str, task: str, variant: str) -> dict[str, str]:
    [found] = [r for r in md_rows(text) if (r["task"], r["variant"]) == (task, variant)]
    return found


def without(csv_path: Path, *tasks: str) -> pd.DataFrame:
    """The runs CSV read as text, without the runs of ``tasks``."""
    df = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    return df[~df["task"].isin(tasks)]


def test_load_runs_keeps_latest_completed_row_per_config_hash(results):
    runs = runs_table.load_runs(results / "runs.csv")
    assert len(runs) == len(RUNS) - 2
    seed0 = runs[runs["config_hash"] == "h-sst2-lora-5e-4-0"]
    assert seed0[["status", "score"]].values.tolist() == [["completed", 0.90]]
    assert runs["hparams"].map(type).eq(dict).all()


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


def test_render_markdown_csv_html(results):
    runs = runs_table.load_runs(results / "runs.csv")
    table = configurations.aggregate(runs)
    md = render(table, "md")
    assert "at the epoch selected" in md and "×100" in md and "Every configuration, unselected" in md
    assert "| avg |" not in md and "avg:" not in md
    line = next(x for x in md.splitlines() if "| sst2 | lora | roberta_base | lr=0.0005 r=8 |" in x)
    assert "| 3 | 1 | accuracy | 92.00 | 2.00 | 92.00 |" in line and "| 887,042 |" in line
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


def read_csv_out(capsys) -> pd.DataFrame:
    """The CSV printed by main, its header checked for repeated columns first."""
    text = capsys.readouterr().out
    header = text.splitlines()[0].split(",")
    assert len(header) == len(set(header)), header
    return pd.read_csv(StringIO(text))


def test_with_reference_published_numbers(results, capsys):
    assert leaderboard.main(["--results", str(results), "--with-reference", "--format", "csv"]) == 0
    table = read_csv_out(capsys)  # the tuned view: one selected row per (task, variant)
    ours = table[table["source"] == "ours"]
    sst2_lora = ours[ours["task"].eq("sst2") & ours["variant"].eq("lora")]
    assert sst2_lora[["hparams", "published"]].values.tolist() == [["lr=0.001 r=8", 95.1]]
    assert "LoRA" in sst2_lora["published_source"].iloc[0]
    assert ours.loc[ours["task"].eq("cola") & ours["variant"].eq("full"), "published"].item() == 63.6
    assert not ours["task"].eq("avg").any()  # no variant of ours ran every task
    ref = table[table["source"] == "reference"]
    assert ref.loc[ref["task"].eq("qqp") & ref["variant"].eq("lora"), "published"].tolist() == [90.8]
    assert 87.2 in ref.loc[ref["task"].eq("avg") & ref["variant"].eq("lora"), "published"].tolist()
    rte_vera = ours[ours["task"].eq("rte") & ours["variant"].eq("vera")]  # failed, still beside the paper
    assert rte_vera["published"].tolist() == [78.7] and rte_vera["n"].isna().all()

    assert leaderboard.main(["--results", str(results), "--with-reference", "--format", "csv", "--full"]) == 0
    table = read_csv_out(capsys)
    ours = table[table["source"] == "ours"]
    rte_vera = ours[ours["task"].eq("rte") & ours["variant"].eq("vera")]
    assert rte_vera[["failed", "published"]].values.tolist() == [[1, 78.7]]
    ref = table[table["source"] == "reference"].set_index(["task", "variant", "model"])
    assert ref.loc[("avg", "adalora", "deberta_v3_base"), "published"] == 89.31
    assert ref.loc[("cola", "vera", "roberta_base"), "trainable_params"] == 43_000

    assert (
        leaderboard.main(["--results", str(results), "--with-reference", "--format", "csv", "--configs"]) == 0
    )
    table = read_csv_out(capsys)  # every configuration: both sst2 lora lrs beside the paper's number
    ours = table[table["source"] == "ours"]
    sst2_lora = ours[ours["task"].eq("sst2") & ours["variant"].eq("lora")]
    assert sst2_lora["published"].tolist() == [95.1, 95.1]
    rte_vera = ours[ours["task"].eq("rte") & ours["variant"].eq("vera")]
    assert rte_vera[["seeds", "failed", "published"]].values.tolist() == [[0, 1, 78.7]]
    ref = table[table["source"] == "reference"].set_index(["task", "variant", "model"])
    assert ref.loc[("avg", "lora", "roberta_base"), "published"] == 87.2


def test_with_reference_tuned_averages_match_only_the_same_tasks(results):
    """The tuned view's averages over cola and sst2 get no published number (the papers average 8 GLUE
    tasks); the papers' averages show apart, as reference rows."""
    ref = published.load_reference(published.REPO_REFERENCE)
    tuned = configurations.tuned_board(without(results / "runs.csv", "rte", "mrpc"))
    table = published.add_reference(tuned, ref)
    ours = table[table["source"] == "ours"]
    avg = ours[ours["task"] == "avg"]
    assert sorted(avg["variant"]) == ["full", "lora"] and avg["published"].isna().all()
    assert ours.loc[ours["task"].eq("sst2") & ours["variant"].eq("full"), "published"].item() == 94.8
    published_avg = table[table["source"].eq("reference") & table["task"].eq("avg")]
    assert {"full", "lora"} <= set(published_avg["variant"])


def test_with_reference_one_task(results, capsys):
    leaderboard.main(["--results", str(results), "--with-reference", "--task", "cola"])
    md = capsys.readouterr().out
    vera = md_row(md, "cola", "vera")
    assert (vera["hparams"], vera["published"], vera["source"]) == ("reference", "65.60", "reference")
    assert "sst2" not in md.split("| rank |")[1]


def test_reference_tables_hold_the_published_numbers():
    ref = published.load_reference(published.REPO_REFERENCE)
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
    glue = {"cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte"}
    assert set(ref["task"]) <= {*glue, "avg"}
    covered = published.averaged_tasks(ref)
    assert covered[("lora", "roberta_base")] == covered[("full", "roberta_base")] == glue  # from the rows
    assert covered[("adalora", "deberta_v3_base")] == glue  # from the tasks column
    assert ("vera", "roberta_base") not in covered  # no published average


def test_cli_writes_out_file(results, capsys):
    out = results / "tables" / "board.html"
    assert leaderboard.main(["--results", str(results), "--format", "html", "--out", str(out)]) == 0
    text = out.read_text()
    assert "<td>93.00</td>" in text and "<td>92.00</td>" not in text  # sst2 lora at its selected lr
    assert f"wrote {out}" in capsys.readouterr().err
    assert (
        leaderboard.main(["--results", str(results), "--format", "html", "--configs", "--out", str(out)]) == 0
    )
    assert "<td>92.00</td>" in out.read_text()  # every configuration


def test_missing_csv_says_how_to_produce_one(tmp_path, capsys):
    with pytest.raises(SystemExit):
        leaderboard.main(["--results", str(tmp_path)])
    err = capsys.readouterr().err
    assert f"no runs CSV at {tmp_path / 'runs.csv'}" in err and "python -m bench train" in err


def test_unknown_task_lists_tasks_present(results, capsys):
    with pytest.raises(SystemExit):
        leaderboard.main(["--results", str(results), "--task", "sst-2"])
    assert "unknown task 'sst-2'; tasks in the leaderboard: cola, mrpc, rte, sst2" in capsys.readouterr().err


def test_unknown_format_on_the_command_line(results, capsys):
    with pytest.raises(SystemExit):
        leaderboard.main(["--results", str(results), "--format", "xlsx"])
    assert "invalid choice: 'xlsx' (choose from" in capsys.readouterr().err


def test_not_a_runs_csv_names_missing_columns(tmp_path):
    (tmp_path / "x.csv").write_text("task,score\nsst2,0.9\n")
    with pytest.raises(
        ValueError, match="x.csv is not a peft-bench runs CSV: missing columns timestamp, run_name,"
    ):
        runs_table.load_runs(tmp_path / "x.csv")


def test_write_sweep_leaderboard_uses_only_the_sweeps_rows(results):
    sweep = results / "sweeps" / "2024-05-03_09-00-00_cola"
    md = write_sweep_leaderboard(sweep, results / "runs.csv")
    assert md == sweep / "leaderboard.md"
    text = md.read_text()
    assert text.startswith("# Leaderboard of sweep 2024-05-03_09-00-00_cola")
    full, lora = md_row(text, "cola", "full"), md_row(text, "cola", "lora")
    assert [full[c] for c in ("rank", "hparams", "mean_x100", "ci95_x100", "n", "tied")] == [
        "1", "lr=2e-05", "64.00", "12.71", "2", "yes",
    ]  # fmt: skip
    assert [lora[c] for c in ("rank", "hparams", "mean_x100", "ci95_x100", "n", "tied")] == [
        "2", "lr=0.0005 r=8", "62.00", "4.97", "3", "yes",
    ]  # fmt: skip
    assert "sst2" not in text and "| avg |" not in text
    table = pd.read_csv(sweep / "leaderboard.csv")  # the tuned view with every column
    assert table[["variant", "n", "mean_x100", "std_x100"]].values.tolist() == [
        ["full", 2, 64.0, pytest.approx(1.4142)],
        ["lora", 3, 62.0, 2.0],
    ]
    p = stats.ttest_ind([63.0, 65.0], [60.0, 62.0, 64.0], equal_var=False).pvalue
    assert table["p_vs_best"].tolist() == [1.0, pytest.approx(p, abs=1e-4)]


def test_write_sweep_leaderboard_unknown_sweep(results):
    with pytest.raises(ValueError, match=r"no runs of sweep .*elsewhere.*; sweeps there: .*_cola"):
        write_sweep_leaderboard(results / "elsewhere", results / "runs.csv")


def relabel(csv_path: Path, variant: str, label: list[str]) -> pd.DataFrame:
    """The runs CSV read as text, with ``label_hparams`` of one variant's rows replaced."""
    df = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    df.loc[df["variant"] == variant, "label_hparams"] = json.dumps(label)
    return df


def test_label_shows_the_recorded_label_hparams_and_what_varies(results):
    def lora(table: pd.DataFrame) -> list[str]:
        return sorted(set(table.loc[table["variant"].eq("lora") & table["task"].ne("avg"), "hparams"]))

    assert lora(configurations.aggregate(relabel(results / "runs.csv", "lora", ["lr"]))) == [
        "lr=0.0005",
        "lr=0.001",
    ]  # r is the same in every run and not a label hparam
    assert lora(configurations.aggregate(relabel(results / "runs.csv", "lora", ["lr", "r", "alpha"]))) == [
        "alpha=8 lr=0.0005 r=8",
        "alpha=8 lr=0.001 r=8",
    ]


def test_published_average_matches_only_over_the_papers_tasks():
    ref = published.load_reference(published.REPO_REFERENCE)
    glue = "cola,mnli,mrpc,qnli,qqp,rte,sst2,stsb"
    ours = pd.DataFrame(  # avg rows as the tuned view has them (ranked among the averages)
        [
            {
                "rank": 1,
                "task": "avg",
                "variant": "lora",
                "model": "roberta_base",
                "mean_x100": 86.0,
                "tasks": glue,
            },
            {
                "rank": 2,
                "task": "avg",
                "variant": "full",
                "model": "roberta_base",
                "mean_x100": 85.0,
                "tasks": "cola,sst2",
            },
            {
                "rank": 1,
                "task": "avg",
                "variant": "adalora",
                "model": "deberta_v3_base",
                "mean_x100": 89.0,
                "tasks": glue,
            },
        ]
    )
    table = published.add_reference(ours, ref).set_index(["task", "variant", "model", "source"])
    assert table.loc[("avg", "lora", "roberta_base", "ours"), "published"] == 87.2
    assert pd.isna(table.loc[("avg", "full", "roberta_base", "ours"), "published"])
    assert table.loc[("avg", "full", "roberta_base", "reference"), "published"] == 86.4  # shown apart
    assert table.loc[("avg", "adalora", "deberta_v3_base", "ours"), "published"] == 89.31


def test_a_sweep_folder_is_read_from_its_run_folders(results, capsys):
    """--results <sweep folder>: the rows come from each run folder's metrics.json (through run_row, as
    the CSV's), and a run skipped by resume from the run its resumed.json points at."""
    sweep = results / "sweeps" / "2024-05-03_09-00-00_cola"
    sst2 = next((results / "runs").glob("*_lora-sst2-s1"))
    (sweep / "99_lora-sst2-s1").mkdir()
    resumed = {"config_hash": "h-sst2-lora-5e-4-1", "completed_in": str(sst2.relative_to(results))}
    (sweep / "99_lora-sst2-s1" / "resumed.json").write_text(json.dumps(resumed))
    (sweep / "leaderboard.csv").write_text("rank,task\n1,cola\n")  # the sweep's aggregate: not a runs CSV
    nested = sweep / "cola" / "part2"  # run folders at any depth (experiment=compare nests them by task)
    nested.mkdir(parents=True)
    next(sweep.glob("*_full-cola-s1")).rename(nested / "16_full-cola-s1")
    assert leaderboard.main(["--results", str(sweep), "--format", "csv"]) == 0
    table = pd.read_csv(StringIO(capsys.readouterr().out))  # the tuned view
    assert table[["task", "variant", "hparams", "n", "mean_x100"]].values.tolist()[:3] == [
        ["cola", "full", "lr=2e-05", 2, 64.0],
        ["cola", "lora", "lr=0.0005 r=8", 3, 62.0],
        ["sst2", "lora", "lr=0.0005 r=8", 1, 92.0],
    ]
    avg = table[table["task"] == "avg"]
    assert avg[["variant", "mean_x100", "tasks"]].values.tolist() == [
        ["lora", 77.0, "cola,sst2"]
    ]  # full: no sst2
    assert leaderboard.main(["--results", str(sweep), "--format", "csv", "--configs"]) == 0
    configs = pd.read_csv(StringIO(capsys.readouterr().out))
    assert configs[["task", "variant", "seeds"]].values.tolist() == [
        ["cola", "full", 2],
        ["cola", "lora", 3],
        ["sst2", "lora", 1],
    ]
    assert (sweep / "leaderboard.csv").read_text() == "rank,task\n1,cola\n"
    assert not (sweep / "runs.csv").exists()
    runs = runs_table.load(sweep)
    from_csv = runs_table.load_runs(results / "runs.csv").set_index("config_hash")
    for _, r in runs.iterrows():
        expected = from_csv.loc[r["config_hash"]]
        assert (r["score"], r["hparams"], r["label_hparams"], r["hp_label"]) == (
            expected["score"],
            expected["hparams"],
            expected["label_hparams"],
            expected["hp_label"],
        )


def test_an_empty_folder_says_how_to_produce_runs(tmp_path, capsys):
    (tmp_path / "sweep" / "0_job").mkdir(parents=True)
    with pytest.raises(SystemExit):
        leaderboard.main(["--results", str(tmp_path / "sweep")])
    assert "no runs CSV at" in capsys.readouterr().err


def test_results_default_is_peft_bench_results(results, monkeypatch, capsys):
    monkeypatch.setenv("PEFT_BENCH_RESULTS", str(results))
    assert leaderboard.main(["--format", "csv"]) == 0
    assert "sst2,lora" in capsys.readouterr().out.replace('"', "")
    monkeypatch.setenv("PEFT_BENCH_RESULTS", str(results / "nowhere"))
    with pytest.raises(SystemExit):
        leaderboard.main([])
    assert f"no runs CSV at {results / 'nowhere' / 'runs.csv'}" in capsys.readouterr().err


def test_run_row_flattens_metrics_json(results):
    metrics = json.loads(next((results / "runs").glob("*_lora-mrpc-s0/metrics.json")).read_text())
    row = run_row(metrics)
    assert list(row) == RUNS_COLUMNS
    assert (row["score"], json.loads(row["metrics"]), json.loads(row["label_hparams"])) == (
        0.88,
        {"accuracy": 0.88, "f1": 0.91},
        ["lr", "r"],
    )


# -- rows keyed by configuration (config_key), differing settings, budgets ---------------------------------

DORA = ["variant=dora", "task=rt_polarity", "model=minilm"]


def composed(compose, root: Path, runs: list[tuple[list[str], int, float]]) -> Path:
    """runs.csv of dora runs: (overrides, seed, score) each, recorded as the runner records them."""
    return write_runs(
        root,
        [composed_run(compose, root, [*DORA, *extra, f"seed={seed}"], score) for extra, seed, score in runs],
    )


def test_config_key_is_the_config_hash_without_the_seed(compose):
    def both(*overrides: str) -> tuple[str, str]:
        container = OmegaConf.to_container(compose(list(overrides)), resolve=True)
        return config_hash(container), config_key(container)

    (h0, k0), (h1, k1) = both("seed=0"), both("seed=1")
    assert h0 != h1 and k0 == k1 and len(k0) == 12
    assert both("seed=0", "paths.results=/elsewhere", "experiment_name=x") == (h0, k0)  # HASH_IGNORED
    assert both("seed=0", "train.weight_decay=0.1")[1] != k0
    settings = config_settings(OmegaConf.to_container(compose(["seed=0"]), resolve=True))
    assert settings["train.weight_decay"] == 0.01 and settings["task.max_eval_samples"] is None
    assert settings["model.max_length"] == 128 and "seed" not in settings
    assert not any(k.split(".")[0] in HASH_IGNORED for k in settings)


def test_the_issues_three_dora_runs_are_three_rows_labelled_by_what_differs(compose, tmp_path):
    """Seed 0 three times, differing in train.weight_decay and model.max_length: not "3 seeds, std 0"."""
    csv_path = composed(
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
    csv_path = composed(
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
    csv_path = composed(compose, tmp_path, [([], 0, 0.80), ([], 1, 0.82), ([], 2, 0.84)])
    table = configurations.aggregate(runs_table.load_runs(csv_path))
    assert table[["hparams", "seeds", "failed"]].values.tolist() == [["lr=0.0005 r=8", 3, 0]]
    assert (table["mean_x100"].item(), table["std_x100"].item()) == pytest.approx((82.0, 2.0))
    assert "budget" not in table.columns  # one budget: nothing to flag
    assert "budgets differ" not in render(table, "md")


def test_mismatched_budgets_are_flagged(compose, tmp_path):
    csv_path = composed(
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
    csv_path = composed(
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


def test_budget_label_names_every_part_of_the_budget():
    budget = dict.fromkeys(BUDGET)
    budget.update({"train.epochs": 2, "train.batch_size": 32, "model.max_length": 64})
    assert budget_label({**budget, "task.max_train_samples": 2000, "task.max_eval_samples": 1000}) == (
        "2 ep x bs 32, len 64, 2000/1000 ex"
    )
    budget.update({"train.max_steps": 100, "train.grad_accum": 4, "train.eval_every_steps": 50})
    assert budget_label(budget) == "2 ep (max 100 steps) x bs 32x4, len 64, eval every 50 steps, all/all ex"


def test_diff_lists_the_settings_rows_differ_in(compose, tmp_path, capsys):
    composed(
        compose,
        tmp_path,
        [
            ([], 0, 0.80),
            ([], 1, 0.80),
            (["train.weight_decay=0.1"], 0, 0.80),
            (["model.max_length=64"], 0, 0.80),
        ],
    )
    assert leaderboard.main(["--results", str(tmp_path), "--diff"]) == 0
    out = capsys.readouterr().out
    assert "## rt_polarity / dora / minilm: 3 rows differ in 2 settings" in out
    assert "| hparams | model.max_length | train.weight_decay |" in out
    assert "| lr=0.0005 r=8 model.max_length=64 train.weight_decay=0.01 | 64 | 0.01 |" in out
    assert leaderboard.main(["--results", str(tmp_path), "--diff", "--format", "csv"]) == 0
    diff = pd.read_csv(StringIO(capsys.readouterr().out))
    assert diff.columns.tolist() == ["task", "variant", "model", "hparams", "setting", "value"]
    assert sorted(set(diff["setting"])) == ["model.max_length", "train.weight_decay"] and len(diff) == 6


def test_diff_of_older_runs_compares_their_hparams(results, capsys):
    """Rows of a CSV written before config_key fall back to label grouping; --diff compares hparams."""
    runs = runs_table.load_runs(results / "runs.csv")
    assert runs["row_key"].str.startswith("label:").all()
    diff = differences(runs)
    assert diff[["task", "variant", "setting"]].drop_duplicates().values.tolist() == [["sst2", "lora", "lr"]]
    assert leaderboard.main(["--results", str(results), "--diff", "--task", "cola"]) == 0
    assert "No (task, variant, model) has rows that differ" in capsys.readouterr().out


def test_older_and_newer_runs_of_one_configuration_stay_apart(compose, tmp_path, results):
    """A row of an older CSV (no config_key) never merges with a keyed one; their labels stay distinct."""
    old = pd.read_csv(results / "runs.csv", dtype=str, keep_default_na=False)
    new = composed_run(
        compose, tmp_path, ["variant=lora", "task=sst2", "model=roberta_base", "variant.lr=5e-4"], 0.9
    )
    both = pd.concat([old, pd.DataFrame([run_row(new)]).astype(str)], ignore_index=True)
    table = configurations.aggregate(both, task="sst2")
    lora = table[table["variant"] == "lora"]
    assert len(lora) == 3 and lora["hparams"].is_unique
    assert sorted(lora["seeds"]) == [1, 2, 3]


def test_budget_of_an_older_run_is_what_its_hparams_recorded(results):
    runs = runs_table.load_runs(results / "runs.csv")
    lora = runs[runs["variant"].eq("lora")].iloc[0]
    assert budget_label(configurations.run_budget(lora)) == "3 ep x bs 16, len ?, all/? ex"


def test_a_malformed_row_is_skipped_and_named_not_fatal(results, capsys):
    """A damaged CSV row (broken JSON, a blank variant) is left out, named on stderr."""
    df = pd.read_csv(results / "runs.csv", dtype=str, keep_default_na=False)
    df.loc[0, "settings"] = '{"train.lr": '
    df.loc[1, "variant"] = ""
    bad_dirs = df.loc[[0, 1], "run_dir"].tolist()
    df.to_csv(results / "runs.csv", index=False)
    runs = runs_table.load_runs(results / "runs.csv")
    messages = [m for m in capsys.readouterr().err.splitlines() if "skipped a malformed run row" in m]
    assert len(messages) == 2 and all(d in m for d, m in zip(bad_dirs, messages, strict=True))
    assert "column settings" in messages[0] and "no variant" in messages[1]
    assert not set(bad_dirs) & set(runs["run_dir"])
    assert leaderboard.main(["--results", str(results)]) == 0  # the leaderboard still renders
    assert "| rank |" in capsys.readouterr().out
