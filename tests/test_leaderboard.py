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
from helpers.results import RUNS, write_results

from bench import leaderboard
from bench.results_columns import RUNS_COLUMNS
from bench.runs_csv import run_row


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
    runs = leaderboard.load_runs(results / "runs.csv")
    assert len(runs) == len(RUNS) - 2
    seed0 = runs[runs["config_hash"] == "h-sst2-lora-5e-4-0"]
    assert seed0[["status", "score"]].values.tolist() == [["completed", 0.90]]
    assert runs["hparams"].map(type).eq(dict).all()


def test_aggregate_statistics_seeds_and_failures(results):
    table = leaderboard.aggregate(leaderboard.load_runs(results / "runs.csv"))
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
    table = leaderboard.aggregate(leaderboard.load_runs(results / "runs.csv"))
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
    table = leaderboard.aggregate(leaderboard.load_runs(results / "runs.csv"))
    sst2 = table[table["task"] == "sst2"]
    assert sst2[["variant", "hparams", "rank"]].values.tolist() == [
        ["full", "lr=2e-05", 1],
        ["lora", "lr=0.001 r=8", 2],
        ["lora", "lr=0.0005 r=8", 3],
    ]
    assert (row(table, "cola", "full")["rank"], row(table, "cola", "lora")["rank"]) == (1, 2)
    assert table["task"].tolist()[:3] == ["cola", "cola", "mrpc"]  # alphabetical, average last
    assert table["task"].tolist()[-2:] == ["avg", "avg"]
    avg_lora, avg_full = row(table, "avg", "lora"), row(table, "avg", "full")
    assert avg_lora["mean_x100"] == pytest.approx((93.0 + 62.0 + 89.0) / 3)  # best lr per task
    assert avg_lora["tasks"] == "cola,mrpc,sst2"
    assert avg_full["mean_x100"] == pytest.approx((94.0 + 1 / 3 + 64.0) / 2)
    assert avg_full["tasks"] == "cola,sst2"
    assert (avg_lora["rank"], avg_full["rank"]) == (1, 1)  # different task sets: not compared
    assert not (table["variant"].eq("vera") & table["task"].eq("avg")).any()


def test_aggregate_one_task_has_no_average(results):
    table = leaderboard.aggregate(leaderboard.load_runs(results / "runs.csv"), task="cola")
    assert table["task"].tolist() == ["cola", "cola"]
    assert "tasks" not in table.columns


def test_render_markdown_csv_html(results):
    table = leaderboard.aggregate(leaderboard.load_runs(results / "runs.csv"))
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
    table = leaderboard.aggregate(leaderboard.load_runs(results / "runs.csv"))
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
    assert ours.loc[ours["task"].eq("avg"), "published"].isna().all()  # ours cover 2-3 tasks, the papers' 8
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
    glue = {"cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte"}
    assert set(ref["task"]) <= {*glue, "avg"}
    covered = leaderboard.averaged_tasks(ref)
    assert covered[("lora", "roberta_base")] == covered[("full", "roberta_base")] == glue  # from the rows
    assert covered[("adalora", "deberta_v3_base")] == glue  # from the tasks column
    assert ("vera", "roberta_base") not in covered  # no published average


def test_cli_writes_out_file(results, capsys):
    out = results / "tables" / "board.html"
    assert leaderboard.main(["--results", str(results), "--format", "html", "--out", str(out)]) == 0
    assert "<td>92.00</td>" in out.read_text()
    assert f"wrote {out}" in capsys.readouterr().err


def test_missing_csv_says_how_to_produce_one(tmp_path, capsys):
    with pytest.raises(SystemExit):
        leaderboard.main(["--results", str(tmp_path)])
    err = capsys.readouterr().err
    assert f"no runs CSV at {tmp_path / 'runs.csv'}" in err and "python -m bench.train" in err


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
        leaderboard.load_runs(tmp_path / "x.csv")


def test_write_sweep_leaderboard_uses_only_the_sweeps_rows(results):
    sweep = results / "sweeps" / "2024-05-03_09-00-00_cola"
    md = leaderboard.write_sweep_leaderboard(sweep, results / "runs.csv")
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
        leaderboard.write_sweep_leaderboard(results / "elsewhere", results / "runs.csv")


def relabel(csv_path: Path, variant: str, label: list[str]) -> pd.DataFrame:
    """The runs CSV read as text, with ``label_hparams`` of one variant's rows replaced."""
    df = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    df.loc[df["variant"] == variant, "label_hparams"] = json.dumps(label)
    return df


def test_label_shows_the_recorded_label_hparams_and_what_varies(results):
    def lora(table: pd.DataFrame) -> list[str]:
        return sorted(set(table.loc[table["variant"].eq("lora") & table["task"].ne("avg"), "hparams"]))

    assert lora(leaderboard.aggregate(relabel(results / "runs.csv", "lora", ["lr"]))) == [
        "lr=0.0005",
        "lr=0.001",
    ]  # r is the same in every run and not a label hparam
    assert lora(leaderboard.aggregate(relabel(results / "runs.csv", "lora", ["lr", "r", "alpha"]))) == [
        "alpha=8 lr=0.0005 r=8",
        "alpha=8 lr=0.001 r=8",
    ]


def test_published_average_matches_only_over_the_papers_tasks():
    ref = leaderboard.load_reference(leaderboard.REPO_REFERENCE)
    glue = "cola,mnli,mrpc,qnli,qqp,rte,sst2,stsb"
    ours = pd.DataFrame(
        [
            {"task": "avg", "variant": "lora", "model": "roberta_base", "mean_x100": 86.0, "tasks": glue},
            {
                "task": "avg",
                "variant": "full",
                "model": "roberta_base",
                "mean_x100": 85.0,
                "tasks": "cola,sst2",
            },
            {
                "task": "avg",
                "variant": "adalora",
                "model": "deberta_v3_base",
                "mean_x100": 89.0,
                "tasks": glue,
            },
        ]
    )
    table = leaderboard.add_reference(ours, ref).set_index(["task", "variant", "model", "source"])
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
    assert leaderboard.main(["--results", str(sweep), "--format", "csv"]) == 0
    table = pd.read_csv(StringIO(capsys.readouterr().out))
    assert table[["task", "variant", "hparams", "seeds", "mean_x100"]].values.tolist()[:3] == [
        ["cola", "full", "lr=2e-05", 2, 64.0],
        ["cola", "lora", "lr=0.0005 r=8", 3, 62.0],
        ["sst2", "lora", "lr=0.0005 r=8", 1, 92.0],
    ]
    avg = table[table["task"] == "avg"]
    assert avg[["variant", "mean_x100", "tasks"]].values.tolist() == [
        ["full", 64.0, "cola"],
        ["lora", 77.0, "cola,sst2"],
    ]
    assert (sweep / "leaderboard.csv").read_text() == "rank,task\n1,cola\n"
    assert not (sweep / "runs.csv").exists()
    runs = leaderboard.load(sweep)
    from_csv = leaderboard.load_runs(results / "runs.csv").set_index("config_hash")
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
