"""bench.analysis.leaderboard, the command: its views and --with-reference on the command line, --out,
the --results default, and the errors it names.

The results folder it reads is helpers/results.py's ``write_results`` (the ``results`` fixture).
"""

from __future__ import annotations

from io import StringIO

import pandas as pd
import pytest
from helpers.markdown import md_row

from bench.analysis import leaderboard


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


def test_with_reference_one_task(results, capsys):
    leaderboard.main(["--results", str(results), "--with-reference", "--task", "cola"])
    md = capsys.readouterr().out
    vera = md_row(md, "cola", "vera")
    assert (vera["hparams"], vera["published"], vera["source"]) == ("reference", "65.60", "reference")
    assert "sst2" not in md.split("| rank |")[1]


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
