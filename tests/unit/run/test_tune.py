"""The ``tune`` command (bench.run.tune): the experiment read into cells and a rule, results read back by
config hash, each round's multiruns, the rounds until nothing is left, and the replay of the committed
comparison (a finished full grid) through the same code."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from helpers.paths import ROOT
from omegaconf import OmegaConf

import variants
from bench.analysis import runs_table, stages
from bench.analysis.configurations import tuned_board
from bench.config.hashing import config_hash
from bench.run import tune

# The finished full grid the replay reads: 3 tasks x 8 variants x 4 lrs x 3 seeds, plus x256 at 4 edges.
ARCHIVE = ROOT / "results" / "archive" / "compare"


@pytest.fixture(scope="module")
def compare() -> tune.Tuning:
    """experiment=compare_archive: the settings of the archived grid (its tasks, methods and budget)."""
    return tune.plan_tuning(["experiment=compare_archive"])


def test_the_experiment_gives_the_rule_and_the_cells(compare):
    assert compare.rule == stages.Rule(
        grid=(1.0, 4.0, 16.0, 64.0), seeds=(0, 1, 2), top_k=2, first_seeds=1, top_seeds=3, edge_cap=1
    )
    assert compare.keys == ("task", "variant") and len(compare.cells) == 3 * 8
    assert compare.fixed == ("experiment=compare_archive",)
    assert compare.sweep_dir == Path("results/archive/compare")


def test_the_comparison_tunes_every_variant_on_eight_tasks():
    now = tune.plan_tuning(["experiment=compare"])
    assert now.rule == stages.Rule(
        grid=(4.0, 16.0, 64.0), seeds=(0, 1, 2), top_k=2, first_seeds=1, top_seeds=2, edge_cap=1
    )
    tasks = {cell.values[0] for cell in now.cells}
    assert len(tasks) == 8 and "rt_rating" not in tasks
    assert len(now.cells) == 8 * len(variants.available()) and now.sweep_dir == Path("results/compare")


def test_overrides_replace_the_sweep_and_each_runs_hash_is_the_composed_one(compose):
    given = ["experiment=compare", "task=rt_polarity", "variant=lora", "train.lr_scale=1,4", "seed=0,1,2,3"]
    small = tune.plan_tuning([*given, "tune.edge_cap=0"])
    assert (small.rule.grid, small.rule.seeds, [c.values for c in small.cells]) == (
        (1.0, 4.0),
        (0, 1, 2, 3),
        [("rt_polarity", "lora")],
    )
    composed = compose(
        ["experiment=compare", "task=rt_polarity", "variant=lora", "train.lr_scale=4", "seed=3"]
    )
    assert small.cells[0].hashes[(4.0, 3)] == config_hash(OmegaConf.to_container(composed, resolve=True))


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["experiment=offline_suite"], "the experiment sets no tune.top_k, tune.first_seeds"),
        (
            ["experiment=offline_suite", *(f"tune.{k}=1" for k in tune.COUNTS)],
            "tune needs a sweep folder that stays the same between launches",
        ),
        (
            ["experiment=offline_suite", "hydra.sweep.dir=x", *(f"tune.{k}=1" for k in tune.COUNTS)],
            "tune needs run folders named by their settings",
        ),
        (
            ["experiment=compare", "tune.grid=train.epochs"],
            "'train.epochs' is not swept; swept: task, variant",
        ),
        (["experiment=compare", "tune.top_seeds=4"], "first_seeds 1 <= top_seeds 4 <= 3 seeds"),
        (
            ["experiment=compare", "tune.grid=task"],
            "tune.grid 'task' must sweep numbers; it sweeps rt_polarity",
        ),
    ],
)
def test_what_tune_cannot_stage_is_named(overrides, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        tune.plan_tuning(overrides)


def test_an_error_is_one_line(capsys):
    with pytest.raises(SystemExit, match="^error: the experiment sets no tune.top_k"):
        tune.main(["experiment=offline_suite", "--dry-run"])


def test_products_cover_the_cells_exactly():
    axes = {"task": ["a", "b", "c"], "variant": ["x", "y"]}
    cells = [("a", "x"), ("a", "y"), ("b", "x"), ("b", "y"), ("c", "x")]
    boxes = tune.products(cells, axes)
    assert sorted(boxes) == [(("a", "b"), ("x", "y")), (("c",), ("x",))]


# -- the committed comparison, replayed ---------------------------------------------------------------------


def selected_scales() -> dict[tuple[str, str], float]:
    """(task, variant) -> the lr scale that the leaderboard of the full grid in ARCHIVE selects."""
    runs = runs_table.load(ARCHIVE)
    scale = {
        (t, v, lr): s["train.lr_scale"]
        for t, v, lr, s in zip(runs["task"], runs["variant"], runs["lr"], runs["settings"], strict=True)
    }
    board = tuned_board(runs, full=True)
    board = board[board["task"] != "avg"]
    return {
        (t, v): scale[(t, v, lr)]
        for t, v, lr in zip(board["task"], board["variant"], board["lr"], strict=True)
    }


def test_the_stages_replayed_on_the_committed_grid_select_as_its_leaderboard(compare, capsys):
    """Fed the committed results, restricted to the runs each stage asks for, the planner selects in
    every (task, variant) cell the lr that the full grid's leaderboard selects, with 8 runs for a cell
    of the 4-point grid (12 in full) and one more per point widening adds."""
    expected = selected_scales()
    archives = tune.read_results(compare, ARCHIVE)
    assert sum(map(len, archives)) == 300  # every committed run found by its config hash
    made = 0
    for cell, archive in zip(compare.cells, archives, strict=True):
        done = stages.replay(compare.rule, archive)
        assert done.plan.selected == expected[cell.values], cell.values
        assert done.lacking == ()
        points = len(done.plan.points)
        assert len(done.made) <= points + 2 * 2, cell.values  # every point once, the top 2 twice more
        assert points == 4 or cell.values in {
            (t, "head") for t in ("rt_polarity", "rt_rating", "tweet_polarity")
        } | {("rt_polarity", "adalora")}
        made += len(done.made)
    assert made <= 196 < 300
    assert tune.show_replay(compare, ARCHIVE) == 0
    assert (
        capsys.readouterr().out.splitlines()[-1]
        == "staged: 196 runs of 300; the same selection in 24 of 24 cells"
    )


def test_tune_on_the_finished_comparison_runs_nothing(compare, monkeypatch, capsys):
    monkeypatch.setattr(tune.subprocess, "call", lambda *a, **k: pytest.fail("nothing should run"))
    assert tune.tune(dataclasses.replace(compare, sweep_dir=ARCHIVE)) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"nothing to run: every stage of 24 cells is complete (300 runs in {ARCHIVE})")
    assert (
        "task=tweet_polarity variant=head: train.lr_scale=256 (seeds per point 1:3 4:3 16:3 64:3 256:3)"
        in out
    )


# -- rounds, with a launcher that writes results instead of training ----------------------------------------


def dev_score(variant: str, point: float, seed: int) -> float:
    """lora peaks at x16; head rises with its lr (so its grid widens at the top)."""
    best = 16.0 if variant == "lora" else 1e9
    return 0.9 - abs(point - best) / 1e4 + 0.001 * seed


class FakeLauncher:
    """``subprocess.call`` of ``train -m``: writes each run's metrics.json (the hash the run would have),
    and records each command; ``stop_after`` runs, it stops as a killed sweep does."""

    def __init__(self, tuning: tune.Tuning, stop_after: int | None = None):
        self.tuning, self.stop_after, self.commands, self.runs = tuning, stop_after, [], 0

    def __call__(self, cmd: list[str]) -> int:
        self.commands.append(cmd[cmd.index("train") + 2 :])
        swept = dict(o.split("=", 1) for o in cmd if "=" in o)
        for cell in self.tuning.cells:
            if not all(v in swept[k].split(",") for k, v in zip(self.tuning.keys, cell.values, strict=True)):
                continue
            for point in map(float, swept["train.lr_scale"].split(",")):
                for seed in map(int, swept["seed"].split(",")):
                    if self.runs == self.stop_after:
                        return -9
                    task, variant = cell.values
                    folder = self.tuning.sweep_dir / task / f"{variant}-lrx{point}-s{seed}"
                    folder.mkdir(parents=True)
                    score = dev_score(variant, point, seed)
                    metrics = {
                        **{"status": "completed", "task": task, "variant": variant, "model": "minilm"},
                        **{"seed": seed, "config_hash": cell.hashes[(point, seed)], "select_on": "dev"},
                        **{"dev_metric": "accuracy", "main_metric": "accuracy"},
                        "best": {"dev/accuracy": score, "test/accuracy": score},
                    }
                    (folder / "metrics.json").write_text(json.dumps(metrics))
                    self.runs += 1
        return 0


@pytest.fixture
def small(tmp_path) -> tune.Tuning:
    return tune.plan_tuning(
        ["experiment=compare_archive", "task=rt_polarity", "variant=lora,head", f"hydra.sweep.dir={tmp_path}"]
    )


def test_rounds_run_each_stage_until_no_cell_asks_for_more(small, monkeypatch, capsys):
    launcher = FakeLauncher(small)
    monkeypatch.setattr(tune.subprocess, "call", launcher)
    assert tune.tune(small) == 0
    fixed = ["experiment=compare_archive", f"hydra.sweep.dir={small.sweep_dir}"]
    assert launcher.commands[0] == [
        *fixed,
        "task=rt_polarity",
        "variant=lora,head",
        "train.lr_scale=1,4,16,64",
        "seed=0",
    ]
    assert launcher.commands[1:3] == [
        [*fixed, "task=rt_polarity", "variant=head", "train.lr_scale=256", "seed=0"],  # stage 1: widened
        [*fixed, "task=rt_polarity", "variant=lora", "train.lr_scale=4,16", "seed=1,2"],  # stage 2
    ]
    assert launcher.commands[3:] == [
        [*fixed, "task=rt_polarity", "variant=head", "train.lr_scale=64,256", "seed=1,2"]
    ]
    assert launcher.runs == 8 + 9
    out = capsys.readouterr().out
    assert "stage 2, the best points on more seeds: 4 runs in 1 cell" in out
    assert "task=rt_polarity variant=lora: train.lr_scale=16 (seeds per point 1:1 4:3 16:3 64:1)" in out
    assert (
        "task=rt_polarity variant=head: train.lr_scale=256 (seeds per point 1:1 4:1 16:1 64:3 256:3)" in out
    )

    again = FakeLauncher(small)  # the same command once all is done: nothing runs
    monkeypatch.setattr(tune.subprocess, "call", again)
    assert tune.tune(small) == 0 and again.commands == []
    assert capsys.readouterr().out.startswith(
        "nothing to run: every stage of 2 cells is complete (17 runs in "
    )


def test_a_killed_stage_resumes_with_the_runs_it_lacks(small, monkeypatch, capsys):
    killed = FakeLauncher(small, stop_after=5)
    monkeypatch.setattr(tune.subprocess, "call", killed)
    assert tune.tune(small) == -9
    assert "the same tune command resumes" in capsys.readouterr().err
    assert tune.tune(small, dry_run=True) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "stage 1, every point on its first seeds: 3 runs in 1 cell"
    assert "variant=head train.lr_scale=4,16,64 seed=0" in out  # the 5 made are not asked again
    resumed = FakeLauncher(small)
    monkeypatch.setattr(tune.subprocess, "call", resumed)
    assert tune.tune(small) == 0 and killed.runs + resumed.runs == 17


def test_runs_that_never_yield_a_result_stop_the_rounds(small, monkeypatch, capsys):
    monkeypatch.setattr(tune.subprocess, "call", lambda cmd: 0)  # ran, wrote nothing (every run failed)
    assert tune.tune(small) == 1
    assert "still have no result" in capsys.readouterr().err
