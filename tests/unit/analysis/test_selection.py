"""Tuned selection (bench.analysis.selection through the leaderboard's default view): selected on dev,
reported on
test, one tuning group per budget, grid edges, tuning time, selected lrs and averages over tasks.

Runs are recorded as the runner records them now (``dev/`` and ``test/`` metrics, select_on, chance, a
``config_key`` and ``settings``) and written to a runs CSV by ``helpers.results.write_runs``.
"""

from __future__ import annotations

import hashlib
import json
import math
from io import StringIO
from pathlib import Path

import pandas as pd
import pytest
from helpers.markdown import md_rows
from helpers.results import composed_run, write_runs
from scipy import stats

from bench.analysis import configurations, leaderboard, runs_table
from bench.analysis.render import render
from bench.analysis.selection import averages, ci_half_width, grid_edge, selected_lrs
from bench.config import store

BUDGET = {
    "train.epochs": 2,
    "train.max_steps": 0,
    "train.batch_size": 32,
    "train.grad_accum": 1,
    "model.max_length": 64,
    "train.eval_every_steps": 0,
    "task.max_train_samples": None,
    "task.max_eval_samples": None,
}
LABEL = "2 ep x bs 32, len 64, all/{} ex"  # budget_label of BUDGET with task.max_eval_samples filled in


def metrics_json(
    task: str,
    variant: str,
    lr: float,
    seed: int,
    test: float | None,
    dev: float | None = None,
    *,
    status: str = "completed",
    select_on: str = "dev",
    train_time_s: float = 10.0,
    **settings,
) -> dict:
    """The metrics.json of one run; ``settings`` (dotted keys, "." written "__") change its configuration."""
    resolved = {
        "task.name": task,
        "variant.name": variant,
        "select_on": select_on,
        **BUDGET,
        "train.lr": lr,
        **{k.replace("__", "."): v for k, v in settings.items()},
    }
    key = hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()[:12]
    done = status == "completed"
    best = {"test/accuracy": test} if done else {}
    if done and dev is not None:
        best["dev/accuracy"] = dev
    return {
        "status": status,
        "run_name": f"{variant}-{task}-s{seed}",
        "variant": variant,
        "task": task,
        "model": "minilm",
        "seed": seed,
        "main_metric": "accuracy",
        "dev_metric": "accuracy",
        "select_on": select_on,
        "best_epoch": 2.0 if done else None,
        "best": best,
        "final": best,
        "chance": {"test/accuracy": 0.5},
        "trainable_params": 1000,
        "pct_trainable": 1.0,
        "peak_memory_mb": 900.0,
        "train_time_s": train_time_s,
        "hparams": {"lr": lr, "epochs": 2, "batch_size": 32},
        "label_hparams": ["lr"],
        "settings": resolved,
        "config_key": key,
        "config_hash": f"{key}-s{seed}",
        "run_dir": f"/runs/{key}-s{seed}",
        "timestamp": "2026-12-01T13:00:00",
    }


def grid(task: str, variant: str, lr: float, dev: list[float], test: list[float], **kw) -> list[dict]:
    """One run per seed (0, 1, ...) of one configuration."""
    return [
        metrics_json(task, variant, lr, s, t, d, **kw) for s, (d, t) in enumerate(zip(dev, test, strict=True))
    ]


def load(tmp_path: Path, runs: list[dict]) -> pd.DataFrame:
    return runs_table.load_runs(write_runs(tmp_path, runs))


def only(table: pd.DataFrame, **match) -> pd.Series:
    sel = pd.Series(True, index=table.index)
    for k, v in match.items():
        sel &= table[k] == v
    assert sel.sum() == 1, table
    return table[sel].iloc[0]


def csv_out(capsys) -> pd.DataFrame:
    return pd.read_csv(StringIO(capsys.readouterr().out))


# -- selected on dev, reported on test -----------------------------------------------------------------------

DEV_HIGH = grid("sst2", "lora", 1e-4, dev=[0.90, 0.91, 0.92], test=[0.70, 0.71, 0.72])  # A
TEST_HIGH = grid("sst2", "lora", 1e-3, dev=[0.80, 0.81, 0.82], test=[0.95, 0.96, 0.97])  # B


def test_the_tuned_view_selects_on_dev_and_reports_test(tmp_path, capsys):
    runs = load(tmp_path, DEV_HIGH + TEST_HIGH)
    tuned = configurations.tuned_board(runs, full=True)
    assert len(tuned) == 1
    a = tuned.iloc[0]
    assert (a["hparams"], a["lr"]) == ("lr=0.0001", 1e-4)
    assert (a["mean_x100"], a["std_x100"], a["dev_x100"]) == pytest.approx((71.0, 1.0, 91.0))
    assert (a["n"], a["grid"], a["grid_runs"], a["failed"], a["rank"]) == (3, 2, 6, 0, 1)
    assert a["ci95_x100"] == pytest.approx(stats.t.ppf(0.975, 2) / math.sqrt(3))
    assert a["chance_x100"] == pytest.approx(50.0)
    assert (a["tied"], a["p_vs_best"]) == (True, 1.0)  # the task's best is tied with itself
    assert "select_on" not in tuned.columns  # shown only when some row follows the papers' convention

    configs = configurations.aggregate(runs)  # --configs: both, ranked by test
    assert configs[["hparams", "rank", "seeds"]].values.tolist() == [["lr=0.001", 1, 3], ["lr=0.0001", 2, 3]]
    assert configs[["mean_x100", "dev_x100"]].to_numpy().ravel().tolist() == pytest.approx(
        [96.0, 81.0, 71.0, 91.0]
    )

    assert leaderboard.main(["--results", str(tmp_path), "--format", "csv"]) == 0
    default = csv_out(capsys)
    assert default[["hparams", "mean_x100", "dev_x100", "n"]].values.tolist() == [
        ["lr=0.0001", 71.0, 91.0, 3]
    ]
    assert leaderboard.main(["--results", str(tmp_path), "--format", "csv", "--configs"]) == 0
    assert csv_out(capsys)["hparams"].tolist() == ["lr=0.001", "lr=0.0001"]


def test_with_the_papers_convention_the_best_test_mean_is_taken_and_said(tmp_path):
    """select_on test (paper reproductions): the candidate with the best test mean, marked as such."""
    runs = [
        *grid("sst2", "lora", 1e-4, dev=[None] * 3, test=[0.70, 0.71, 0.72], select_on="test"),
        *grid("sst2", "lora", 1e-3, dev=[None] * 3, test=[0.95, 0.96, 0.97], select_on="test"),
    ]
    tuned = configurations.tuned_board(load(tmp_path, runs))
    row = tuned.iloc[0]
    assert (len(tuned), row["hparams"], row["mean_x100"], row["select_on"]) == (1, "lr=0.001", 96.0, "test")
    assert pd.isna(row["dev_x100"])
    assert "select_on test: the papers' convention" in render(tuned, "md")


def test_runs_selected_on_dev_and_on_test_are_tuned_apart(tmp_path):
    runs = [
        *DEV_HIGH,
        *TEST_HIGH,
        *grid("sst2", "lora", 1e-4, dev=[None] * 3, test=[0.70, 0.71, 0.72], select_on="test"),
        *grid("sst2", "lora", 1e-3, dev=[None] * 3, test=[0.95, 0.96, 0.97], select_on="test"),
    ]
    tuned = configurations.tuned_board(load(tmp_path, runs), full=True)
    assert sorted(tuned[["select_on", "hparams"]].values.tolist()) == [
        ["dev", "lr=0.0001 select_on=dev"],  # the setting the rows differ in is in their labels
        ["test", "lr=0.001 select_on=test"],
    ]
    assert tuned["grid"].tolist() == [2, 2]


def data(folder: str, fingerprint: str) -> dict[str, str]:
    """The settings of a run on the user's files in ``folder`` (their fingerprint's first hex digit)."""
    return {"task__source": "glue", "task__data_dir": folder, "task__data_fingerprint": fingerprint * 64}


def test_runs_on_other_data_are_other_tasks_never_selected_between(tmp_path):
    """Two data folders, or one folder edited (another fingerprint), are two tasks: each keeps its own
    row, named with its data, and neither is tuned away by the other's dev score."""
    runs = [
        *grid("sst2", "lora", 1e-3, dev=[0.90, 0.90], test=[0.70, 0.70], **data("/d/sst2_a", "a")),
        *grid("sst2", "lora", 1e-3, dev=[0.80, 0.80], test=[0.95, 0.95], **data("/d/sst2_b", "b")),
        *grid("sst2", "lora", 1e-3, dev=[0.85, 0.85], test=[0.90, 0.90], **data("/d/sst2_a", "c")),
        *grid("sst2", "lora", 1e-3, dev=[0.70, 0.70], test=[0.60, 0.60]),  # the Hub's
    ]
    tuned = configurations.tuned_board(load(tmp_path, runs), full=True)
    tuned = tuned[tuned["task"] != "avg"]
    assert sorted(zip(tuned["task"], tuned["mean_x100"], tuned["grid"], strict=True)) == [
        ("sst2", 60.0, 1),
        ("sst2@sst2_a:aaaaaaaa", 70.0, 1),
        ("sst2@sst2_a:cccccccc", 90.0, 1),
        ("sst2@sst2_b:bbbbbbbb", 95.0, 1),
    ]
    assert set(tuned["hparams"]) == {"lr=0.001"}  # the data is in the task, not a tuned setting
    configs = configurations.aggregate(load(tmp_path, runs))
    assert len(configs) == 4 and set(configs["rank"]) == {1}


def test_a_dev_tie_goes_to_the_lowest_lr(tmp_path):
    runs = [
        *grid("sst2", "lora", 1e-3, dev=[0.90, 0.90], test=[0.95, 0.95]),
        *grid("sst2", "lora", 1e-4, dev=[0.90, 0.90], test=[0.70, 0.70]),
    ]
    row = configurations.tuned_board(load(tmp_path, runs), full=True).iloc[0]
    assert (row["lr"], row["mean_x100"]) == (1e-4, pytest.approx(70.0))


def test_a_group_with_no_completed_run_still_shows_its_failures(tmp_path):
    runs = [metrics_json("sst2", "vera", 1e-3, s, None, status="failed", train_time_s=3.0) for s in (0, 1)]
    runs += grid("sst2", "lora", 1e-3, dev=[0.9, 0.9], test=[0.9, 0.92])
    tuned = configurations.tuned_board(load(tmp_path, runs), full=True)
    vera = only(tuned, variant="vera")
    assert (vera["hparams"], vera["failed"]) == ("(no completed run)", 2)
    assert pd.isna(vera["mean_x100"]) and pd.isna(vera["rank"]) and vera["tied"] is None


# -- configurations: every config value but the seed ---------------------------------------------------------

DORA = ["variant=dora", "task=rt_polarity", "model=minilm"]


@pytest.mark.parametrize(
    "override, budget_differs",
    [("train.weight_decay=0.1", False), ("model.max_length=64", True), ("task.max_eval_samples=200", True)],
)
def test_runs_differing_in_any_config_value_but_the_seed_never_share_a_row(
    compose, tmp_path, override, budget_differs
):
    def run(extra: list[str], seed: int, dev: float, test: float) -> dict:
        m = composed_run(compose, tmp_path, [*DORA, *extra, f"seed={seed}"], test)
        m["best"] = m["final"] = {f"dev/{m['dev_metric']}": dev, f"test/{m['main_metric']}": test}
        return m

    runs = [
        run([], 0, 0.80, 0.80),
        run([], 1, 0.82, 0.84),
        run([override], 0, 0.90, 0.90),
        run([override], 1, 0.90, 0.92),
    ]
    df = load(tmp_path, runs)
    assert df["config_key"].nunique() == 2 and df["config_hash"].nunique() == 4
    configs = configurations.configurations(df)
    assert len(configs) == 2 and configs["seeds"].tolist() == [2, 2]
    scores = sorted(configs["scores_x100"].map(sorted).tolist())
    assert scores[0] == pytest.approx([80.0, 84.0]) and scores[1] == pytest.approx([90.0, 92.0])
    other = configs.loc[configs["mean_x100"].idxmax()]
    assert (
        other["mean_x100"] == pytest.approx(91.0)
        and override in other["hparams"]
        and other["dev_x100"] == pytest.approx(90.0)
    )
    tuned = configurations.tuned_board(df, full=True)
    if budget_differs:  # a budget setting: tuned apart, each group a single candidate
        assert len(tuned) == 2 and tuned["grid"].tolist() == [1, 1]
        assert tuned["budget"].str.startswith("! ").all()  # two budgets, neither the most common
    else:  # the same budget: one tuning group with both candidates, the better dev selected
        assert len(tuned) == 1 and tuned["grid"].item() == 2 and override in tuned["hparams"].item()


def test_runs_differing_only_in_the_seed_share_a_row(tmp_path):
    runs = grid("sst2", "lora", 1e-3, dev=[0.9, 0.9, 0.9], test=[0.80, 0.82, 0.84])
    configs = configurations.configurations(load(tmp_path, runs))
    assert len(configs) == 1 and configs["seeds"].item() == 3
    assert configs["scores_x100"].item() == pytest.approx([80.0, 82.0, 84.0])


# -- confidence intervals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scores",
    [[1.0, 2.0, 3.0, 4.0], [0.5, 0.9], [80.1, 82.3, 79.8, 85.0, 81.1], [70.0, 70.0, 70.5]],
)
def test_ci_half_width_is_scipys_t_interval(scores):
    mean = sum(scores) / len(scores)
    lo, hi = stats.t.interval(0.95, len(scores) - 1, loc=mean, scale=stats.sem(scores))
    assert ci_half_width(scores) == pytest.approx((hi - lo) / 2, rel=1e-12)
    lo, hi = stats.t.interval(0.9, len(scores) - 1, loc=mean, scale=stats.sem(scores))
    assert ci_half_width(scores, confidence=0.9) == pytest.approx((hi - lo) / 2, rel=1e-12)


def test_ci_half_width_of_fewer_than_two_scores_is_nan():
    assert math.isnan(ci_half_width([81.0])) and math.isnan(ci_half_width([]))
    assert ci_half_width([70.0, 70.0]) == 0.0


def test_one_seed_gets_no_ci_and_no_tie_verdict(tmp_path):
    """Welch's test needs 2 seeds a side: a row compared with fewer gets p nan and tied None ("-")."""
    runs = [
        *grid("t1", "lora", 1e-3, dev=[0.9, 0.9, 0.9], test=[0.80, 0.82, 0.84]),
        *grid("t1", "full", 2e-5, dev=[0.9], test=[0.83]),  # the best, with one seed
        *grid("t2", "lora", 1e-3, dev=[0.9, 0.9, 0.9], test=[0.80, 0.82, 0.84]),  # the best
        *grid("t2", "full", 2e-5, dev=[0.9], test=[0.70]),
    ]
    tuned = configurations.tuned_board(load(tmp_path, runs), full=True)
    best = only(tuned, task="t1", variant="full")
    assert (best["rank"], best["n"], best["tied"], best["p_vs_best"]) == (1, 1, True, 1.0)  # the best itself
    assert pd.isna(best["ci95_x100"])
    lora = only(tuned, task="t1", variant="lora")
    assert pd.isna(lora["p_vs_best"]) and lora["tied"] is None  # the best has one seed: no test
    worse = only(tuned, task="t2", variant="full")
    assert pd.isna(worse["p_vs_best"]) and worse["tied"] is None and pd.isna(worse["ci95_x100"])
    row = next(r for r in md_rows(render(tuned, "md")) if (r["task"], r["variant"]) == ("t2", "full"))
    assert (row["n"], row["ci95_x100"], row["tied"], row["p_vs_best"]) == ("1", "-", "-", "-")


# -- budgets -------------------------------------------------------------------------------------------------


def mixed_budgets() -> list[dict]:
    """lora at two lrs on 346 eval examples and at one on 200; full on 346."""
    return [
        *grid("t", "lora", 1e-4, dev=[0.80, 0.80], test=[0.80, 0.81], task__max_eval_samples=346),
        *grid("t", "lora", 1e-3, dev=[0.82, 0.82], test=[0.78, 0.79], task__max_eval_samples=346),
        *grid("t", "lora", 1e-4, dev=[0.85, 0.85], test=[0.85, 0.86], task__max_eval_samples=200),
        *grid("t", "full", 2e-5, dev=[0.81, 0.81], test=[0.82, 0.83], task__max_eval_samples=346),
    ]


def test_mismatched_budgets_are_flagged_and_tuned_apart(tmp_path):
    runs = load(tmp_path, mixed_budgets())
    configs = configurations.aggregate(runs)
    assert sorted(configs["budget"]) == ["! " + LABEL.format(200), *[LABEL.format(346)] * 3]
    tuned = configurations.tuned_board(runs, full=True)
    assert sorted(tuned[["variant", "lr", "budget"]].values.tolist()) == [
        ["full", 2e-5, LABEL.format(346)],
        ["lora", 1e-4, "! " + LABEL.format(200)],
        ["lora", 1e-3, LABEL.format(346)],  # selected on dev within its own budget
    ]
    assert only(tuned, variant="lora", lr=1e-3)["grid"] == 2
    md = render(configurations.tuned_board(runs), "md")
    assert (
        f"> budgets differ on t: {LABEL.format(346)} (2 rows); {LABEL.format(200)} (1 row) — "
        "not a like-for-like comparison (`!` marks the rows off the task's most common budget)." in md
    )
    assert f"| ! {LABEL.format(200)} |" in md


def test_one_budget_has_no_budget_column(tmp_path):
    tuned = configurations.tuned_board(load(tmp_path, DEV_HIGH + TEST_HIGH), full=True)
    assert "budget" not in tuned.columns
    assert "budgets differ" not in render(tuned, "md")


# -- grid edge and tuning time -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lrs, chosen, edge",
    [
        ([1e-4, 3e-4, 1e-3], 1e-3, "high"),
        ([1e-4, 3e-4, 1e-3], 3e-4, ""),
        ([1e-4, 3e-4, 1e-3], 1e-4, "low"),
        ([1e-3, 1e-4, 3e-4, 3e-3], 3e-3, "high"),  # unsorted
        ([1e-4, 1e-3], 1e-3, ""),  # fewer than 3 lrs: no edge
        ([1e-4, 1e-4, 1e-3], 1e-3, ""),  # 2 distinct lrs
        ([1e-4, None, 1e-3], 1e-3, ""),  # a candidate without an lr does not count
        ([1e-4, 3e-4, 1e-3], None, ""),
    ],
)
def test_grid_edge(lrs, chosen, edge):
    assert grid_edge(pd.Series(lrs, dtype=float), math.nan if chosen is None else chosen) == edge


@pytest.mark.parametrize("best, edge", [(1e-3, "high"), (3e-4, ""), (1e-4, "low")])
def test_the_tuned_rows_grid_edge_and_tuning_time(tmp_path, best, edge):
    lrs = [1e-4, 3e-4, 1e-3]
    runs, times = [], []
    for i, lr in enumerate(lrs):
        dev = 0.9 if lr == best else 0.8
        for seed in (0, 1):
            times.append(10.0 * (i + 1) + seed)
            runs.append(metrics_json("t", "lora", lr, seed, 0.85, dev, train_time_s=times[-1]))
    runs.append(metrics_json("t", "lora", 3e-4, 2, None, status="diverged", train_time_s=7.0))
    tuned = configurations.tuned_board(load(tmp_path, runs), full=True)
    row = tuned.iloc[0]
    assert (len(tuned), row["lr"], row["edge"]) == (1, best, edge)
    assert (row["grid"], row["grid_runs"], row["failed"], row["n"]) == (3, 7, 1, 2)
    assert row["tuning_time_s"] == pytest.approx(sum(times) + 7.0)  # every run of every candidate
    assert row["train_time_s"] == pytest.approx(
        sum(times[2 * lrs.index(best) :][:2]) / 2
    )  # the selected's mean


# -- staged grids (peft-bench tune) -------------------------------------------------------------------------


def staged_grid() -> list[dict]:
    """Four lrs on seed 0, then the two best on dev (4e-4, 1.6e-3) on seeds 1 and 2."""
    return [
        metrics_json("t", "lora", 1e-4, 0, 0.70, 0.70, train_time_s=11.0),
        *grid("t", "lora", 4e-4, dev=[0.85, 0.78, 0.77], test=[0.80, 0.79, 0.78], train_time_s=12.0),
        *grid("t", "lora", 1.6e-3, dev=[0.84, 0.83, 0.82], test=[0.83, 0.82, 0.81], train_time_s=13.0),
        metrics_json("t", "lora", 6.4e-3, 0, 0.90, 0.835, train_time_s=14.0),  # best dev mean, one seed
    ]


def test_a_staged_grid_selects_among_the_points_with_the_most_seeds(tmp_path):
    """The one-seed point with the best mean dev (6.4e-3) is no candidate: the best mean dev score
    among the points with the most seeds is (1.6e-3), as a full grid would select; the tuning cost
    counts the 8 runs made, and grid_seeds says how many seeds each point has."""
    row = configurations.tuned_board(load(tmp_path, staged_grid()), full=True).iloc[0]
    assert (row["lr"], row["n"], row["dev_x100"]) == (1.6e-3, 3, pytest.approx(83.0))
    assert (row["grid"], row["grid_runs"], row["grid_seeds"]) == (4, 8, "1/3/3/1")
    assert row["tuning_time_s"] == pytest.approx(11.0 + 3 * 12.0 + 3 * 13.0 + 14.0)


def test_a_failed_or_diverged_seed_counts_as_run(tmp_path):
    """1.6e-3 diverged on seed 2: it was still run on 3 seeds, so it stays a candidate (its dev mean over
    the 2 completed is the best) and the one-seed points stay out."""
    runs = [r for r in staged_grid() if (r["hparams"]["lr"], r["seed"]) != (1.6e-3, 2)]
    runs.append(metrics_json("t", "lora", 1.6e-3, 2, None, status="diverged"))
    row = configurations.tuned_board(load(tmp_path, runs), full=True).iloc[0]
    assert (row["lr"], row["n"], row["failed"], row["grid_seeds"]) == (1.6e-3, 2, 1, "1/3/3/1")


def test_a_staged_grid_shows_its_seeds_per_point_and_a_full_one_does_not(tmp_path):
    for name in ("staged", "full"):
        (tmp_path / name).mkdir()
    staged = render(configurations.tuned_board(load(tmp_path / "staged", staged_grid())), "md")
    assert md_rows(staged)[0]["grid_seeds"] == "1/3/3/1"
    assert "grid_seeds: the seeds each candidate was run on, lowest lr first" in staged
    full = render(configurations.tuned_board(load(tmp_path / "full", DEV_HIGH + TEST_HIGH)), "md")
    assert "grid_seeds" not in full


def test_the_sensitivity_view_marks_one_seed_points(tmp_path, capsys):
    write_runs(tmp_path, staged_grid())
    assert leaderboard.main(["--results", str(tmp_path), "--sensitivity", "--format", "csv"]) == 0
    table = csv_out(capsys)
    assert table[["lr", "seeds", "one_seed", "selected"]].values.tolist() == [
        [1e-4, 1, True, False],
        [4e-4, 3, False, False],
        [1.6e-3, 3, False, True],
        [6.4e-3, 1, True, False],
    ]
    (tmp_path / "full").mkdir()
    write_runs(tmp_path / "full", DEV_HIGH + TEST_HIGH)
    assert leaderboard.main(["--results", str(tmp_path / "full"), "--sensitivity", "--format", "csv"]) == 0
    assert "one_seed" not in csv_out(capsys).columns


# -- selected lrs --------------------------------------------------------------------------------------------


def two_tasks() -> list[dict]:
    return [
        *grid("a", "lora", 1e-4, dev=[0.80, 0.81], test=[0.80, 0.81]),
        *grid("a", "lora", 1e-3, dev=[0.85, 0.86], test=[0.84, 0.85]),
        *grid("a", "full", 2e-5, dev=[0.86, 0.87], test=[0.86, 0.87]),
        *grid("a", "full", 5e-5, dev=[0.83, 0.84], test=[0.88, 0.89]),
        *grid("b", "lora", 1e-4, dev=[0.70, 0.71], test=[0.72, 0.73]),
        *grid("b", "lora", 1e-3, dev=[0.60, 0.61], test=[0.75, 0.76]),
        *grid("b", "full", 2e-5, dev=[0.66, 0.67], test=[0.66, 0.67]),
        *grid("b", "full", 5e-5, dev=[0.68, 0.69], test=[0.68, 0.69]),
    ]


EXPECTED_LRS = {"a": {"full": 2e-5, "lora": 1e-3}, "b": {"full": 5e-5, "lora": 1e-4}}


def test_selected_lrs_per_task_and_variant(tmp_path, capsys, monkeypatch):
    runs = load(tmp_path, two_tasks())
    assert selected_lrs(configurations.tuned_board(runs, full=True)) == EXPECTED_LRS
    out = tmp_path / "selected" / "mine.yaml"
    assert leaderboard.main(["--results", str(tmp_path), "--selected-lrs", "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith(
        f"# The lr selected on dev per task and variant by the tuned leaderboard of {tmp_path}."
    )
    assert "a:\n  full: 2e-05\n  lora: 0.001\nb:\n  full: 5e-05\n  lora: 0.0001\n" in text
    monkeypatch.setattr(store, "SELECTED_DIR", out.parent)  # what ${peft_bench.selected_lr:...} reads
    assert {
        t: {v: store.selected_lr("mine", t, v) for v in vs} for t, vs in EXPECTED_LRS.items()
    } == EXPECTED_LRS
    assert store.selected_lr("mine", "a", "vera") is None


def test_selected_lrs_refuse_two_tuned_rows_per_task_and_variant(tmp_path, capsys):
    runs = load(tmp_path, mixed_budgets())
    with pytest.raises(ValueError, match=r"several tuned rows per \(task, variant\) .*: t/lora$"):
        selected_lrs(configurations.tuned_board(runs, full=True))
    with pytest.raises(SystemExit):
        leaderboard.main(["--results", str(tmp_path), "--selected-lrs"])
    assert "several tuned rows per (task, variant)" in capsys.readouterr().err


# -- averages over tasks -------------------------------------------------------------------------------------


def test_a_variant_missing_a_task_gets_no_average(tmp_path):
    runs = [
        *two_tasks(),
        *grid("a", "ia3", 3e-3, dev=[0.7, 0.7], test=[0.98, 0.99]),  # no run on b
        *grid("a", "vera", 1e-3, dev=[0.7, 0.7], test=[0.60, 0.61]),
        metrics_json("b", "vera", 1e-3, 0, None, status="failed"),  # b: failed only
    ]
    tuned = configurations.tuned_board(load(tmp_path, runs))
    avg = tuned[tuned["task"] == "avg"]
    # ranked by average rank: full is first on a, lora on b, so they share rank 1 (1.5 each)
    assert avg[["rank", "variant", "tasks"]].values.tolist() == [[1, "full", "a,b"], [1, "lora", "a,b"]]
    assert avg["avg_rank"].tolist() == [1.5, 1.5]
    # the selected test means: full (86.5 + 68.5) / 2, lora (84.5 + 72.5) / 2
    assert avg["mean_x100"].tolist() == pytest.approx([77.5, 78.5])
    assert sorted(tuned.attrs["incomplete"]) == ["ia3", "vera"]
    md = render(tuned, "md")
    assert "No average for ia3, vera: missing some task." in md or "No average for vera, ia3" in md
    assert "only the variants that ran every task are averaged" in md


def test_averages_rank_by_average_rank_and_name_mixed_metrics():
    """A high mean on the larger scale does not rank first: ranks compare across metrics, means do not."""
    rows = [  # (task, metric, variant, test mean): x is best on a and b, y has the highest mean
        ("a", "accuracy", "x", 90.0), ("a", "accuracy", "y", 89.0), ("a", "accuracy", "z", 50.0),
        ("b", "accuracy", "x", 80.0), ("b", "accuracy", "y", 79.0), ("b", "accuracy", "z", 60.0),
        ("c", "pearson", "x", 10.0), ("c", "pearson", "y", 70.0), ("c", "pearson", "z", 20.0),
    ]  # fmt: skip
    table = pd.DataFrame(rows, columns=["task", "main_metric", "variant", "mean_x100"]).assign(
        model="m", tuning_time_s=1.0, trainable_params=1.0, pct_trainable=1.0, peak_memory_mb=1.0,
        train_time_s=1.0,
    )  # fmt: skip
    avg, incomplete = averages(table)
    assert incomplete == []
    by = avg.set_index("variant")
    assert by["avg_rank"].to_dict() == pytest.approx({"x": 5 / 3, "y": 5 / 3, "z": 8 / 3})
    assert by["rank"].to_dict() == {"x": 1, "y": 1, "z": 3}
    assert by.loc["y", "mean_x100"] > by.loc["x", "mean_x100"]  # the mean alone would rank y first
    assert set(by["main_metric"]) == {"accuracy+pearson"}
    same = averages(table[table["task"] != "c"])[0]
    assert same["main_metric"].tolist() == ["accuracy"] * 3 and same["rank"].tolist() == [1, 2, 3]


def test_the_notes_say_when_the_average_mixes_metrics(tmp_path):
    tuned = configurations.tuned_board(load(tmp_path, two_tasks()))
    assert tuned.attrs["mixed_metrics"] == ""  # both tasks' metric is accuracy
    assert "avg mixes metrics" not in render(tuned, "md")
    tuned.attrs["mixed_metrics"] = "accuracy+pearson"
    md = render(tuned, "md")
    assert "avg mixes metrics (accuracy+pearson)" in md and "ranked by avg_rank" in md


def test_one_task_has_no_averages(tmp_path):
    tuned = configurations.tuned_board(load(tmp_path, two_tasks()), task="a")
    assert tuned["task"].tolist() == ["a", "a"] and tuned.attrs["incomplete"] == []
