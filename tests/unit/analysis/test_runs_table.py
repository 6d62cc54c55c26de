"""bench.analysis.runs_table: the runs a leaderboard reads (a runs CSV, a sweep folder's run folders), the
latest completed row per config hash, each run's configuration label, and malformed rows skipped."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pandas as pd
import pytest
from helpers.notices import notices
from helpers.results import RUNS, composed_run

from bench.analysis import configurations, leaderboard, runs_table
from bench.results.runs_csv import run_row


def test_load_runs_keeps_latest_completed_row_per_config_hash(results):
    runs = runs_table.load_runs(results / "runs.csv")
    assert len(runs) == len(RUNS) - 2
    seed0 = runs[runs["config_hash"] == "h-sst2-lora-5e-4-0"]
    assert seed0[["status", "score"]].values.tolist() == [["completed", 0.90]]
    assert runs["hparams"].map(type).eq(dict).all()


def test_not_a_runs_csv_names_missing_columns(tmp_path):
    (tmp_path / "x.csv").write_text("task,score\nsst2,0.9\n")
    with pytest.raises(
        ValueError, match="x.csv is not a peft-bench runs CSV: missing columns timestamp, run_name,"
    ):
        runs_table.load_runs(tmp_path / "x.csv")


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


def test_a_malformed_row_is_skipped_and_named_not_fatal(results, capsys, caplog):
    """A damaged CSV row (broken JSON, a blank variant) is left out, named on stderr."""
    df = pd.read_csv(results / "runs.csv", dtype=str, keep_default_na=False)
    df.loc[0, "settings"] = '{"train.lr": '
    df.loc[1, "variant"] = ""
    bad_dirs = df.loc[[0, 1], "run_dir"].tolist()
    df.to_csv(results / "runs.csv", index=False)
    runs = runs_table.load_runs(results / "runs.csv")
    messages = [m for m in notices(caplog).splitlines() if "skipped a malformed run row" in m]
    assert len(messages) == 2 and all(d in m for d, m in zip(bad_dirs, messages, strict=True))
    assert "column settings" in messages[0] and "no variant" in messages[1]
    assert not set(bad_dirs) & set(runs["run_dir"])
    assert leaderboard.main(["--results", str(results)]) == 0  # the leaderboard still renders
    assert "| rank |" in capsys.readouterr().out


def test_a_task_on_the_users_files_is_named_with_its_data():
    fp = "0123456789abcdef" * 4
    glue = {"task.name": "sst2", "task.source": "glue", "task.data_dir": "/d/sst2_v2/"}
    assert runs_table.task_label("sst2", glue | {"task.data_fingerprint": fp}) == "sst2@sst2_v2:01234567"
    assert runs_table.task_label("sst2@sst2_v2:01234567", glue | {"task.data_fingerprint": fp}) == (
        "sst2@sst2_v2:01234567"  # labelling a label again changes nothing
    )
    assert runs_table.task_label("sst2", glue) == "sst2@sst2_v2"  # recorded without a fingerprint
    assert runs_table.task_label("sst2", {"task.source": "glue", "task.data_dir": None}) == "sst2"  # the Hub
    vader = {"task.source": "vader", "task.data_dir": "/sdist"}  # packaged, fixed by its checksum
    assert runs_table.task_label("rt_polarity", vader) == "rt_polarity"
    assert runs_table.task_label("rte", {}) == "rte"  # recorded before settings


@pytest.mark.parametrize(
    "value, shown",
    [
        (8e-05, "8e-05"),
        (16.0, "16"),
        (0.0512, "0.0512"),
        (1.23456789e-4, "0.000123456789"),
        (1234567.0, "1234567"),
    ],
)
def test_a_float_in_a_label_is_exact(value, shown):
    """No setting is rounded in a label: lr=1.23456789e-4 does not read 0.000123457."""
    assert runs_table.exact(value) == shown == runs_table.fmt_value(value)


def test_a_moved_sweep_folder_s_runs_are_read_where_they_are_now(results, tmp_path):
    """A comparison moved aside (results/compare -> results/archive/compare) keeps its runs' recorded
    run_dir, where another comparison may write now: the rows name the folder each was read from."""
    moved = tmp_path / "archive" / "cola"
    moved.parent.mkdir()
    (results / "sweeps" / "2024-05-03_09-00-00_cola").rename(moved)
    decoy = tmp_path / "compare" / "cola"  # the new comparison's folder of the same name
    decoy.mkdir(parents=True)
    for metrics_json in moved.glob("*/metrics.json"):
        metrics = json.loads(metrics_json.read_text())
        (decoy / metrics_json.parent.name).mkdir()
        metrics_json.write_text(json.dumps({**metrics, "run_dir": str(decoy / metrics_json.parent.name)}))
    runs = runs_table.load(moved)
    assert len(runs) > 1 and sorted(runs["run_dir"]) == sorted(
        str(m.parent) for m in moved.glob("*/metrics.json")
    )
