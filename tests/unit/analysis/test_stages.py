"""Staged tuning's planner (bench.analysis.stages): each stage computed from the results so far, edge
widening, and the replay of a finished grid."""

from __future__ import annotations

import pytest

from bench.analysis.stages import Rule, next_stage, replay, step_out

GRID = (1.0, 4.0, 16.0, 64.0)
RULE = Rule(grid=GRID, seeds=(0, 1, 2), top_k=2, first_seeds=1, top_seeds=3, edge_cap=1)


def full_grid(dev: dict[float, float], seeds=(0, 1, 2)) -> dict[tuple[float, int], float]:
    """Every point on every seed, its score the point's plus a little per seed."""
    return {(p, s): d + 0.001 * s for p, d in dev.items() for s in seeds}


def test_stage_1_runs_every_point_on_its_first_seeds():
    plan = next_stage(RULE, {})
    assert (plan.stage, plan.runs, plan.points, plan.selected) == (1, tuple((p, 0) for p in GRID), GRID, None)
    half = next_stage(RULE, {(1.0, 0): 0.7, (4.0, 0): 0.8})  # a killed stage: the rest of it
    assert (half.stage, half.runs, half.selected) == (1, ((16.0, 0), (64.0, 0)), 4.0)


def test_stage_2_runs_the_top_k_on_more_seeds_then_stage_3_is_empty_at_top_seeds_equal_seeds():
    first = {(1.0, 0): 0.70, (4.0, 0): 0.85, (16.0, 0): 0.80, (64.0, 0): 0.75}
    plan = next_stage(RULE, first)
    assert (plan.stage, plan.runs) == (2, ((4.0, 1), (4.0, 2), (16.0, 1), (16.0, 2)))
    done = first | {(4.0, 1): 0.79, (4.0, 2): 0.79, (16.0, 1): 0.82, (16.0, 2): 0.82}
    final = next_stage(RULE, done)
    # 16 is selected over 4 although 4 led on seed 0; 1 and 64 (one seed) are not candidates any more
    assert (final.stage, final.runs, final.selected) == (0, (), 16.0)


def test_stage_3_brings_the_selected_point_to_every_seed():
    rule = Rule(grid=GRID, seeds=(0, 1, 2, 3, 4), top_k=2, first_seeds=1, top_seeds=2, edge_cap=0)
    results = {(1.0, 0): 0.7, (4.0, 0): 0.9, (16.0, 0): 0.8, (64.0, 0): 0.6, (4.0, 1): 0.6, (16.0, 1): 0.8}
    plan = next_stage(rule, results)
    assert (plan.stage, plan.runs, plan.selected) == (3, ((16.0, 2), (16.0, 3), (16.0, 4)), 16.0)
    assert next_stage(rule, results | {(16.0, s): 0.8 for s in (2, 3, 4)}).stage == 0


def test_a_selection_at_the_edge_widens_the_grid_up_to_the_cap():
    rising = {(p, 0): 0.5 + p / 1000 for p in GRID}  # the highest point leads
    plan = next_stage(RULE, rising)
    assert (plan.stage, plan.runs, plan.points) == (1, ((256.0, 0),), (*GRID, 256.0))
    capped = next_stage(RULE, rising | {(256.0, 0): 0.9})
    assert capped.stage == 2 and max(capped.points) == 256.0  # one point past the grid: no 1024
    assert set(capped.runs) == {(p, s) for p in (64.0, 256.0) for s in (1, 2)}
    falling = next_stage(RULE, {(p, 0): 0.9 - p / 1000 for p in GRID})
    assert (falling.runs, falling.points) == (((0.25, 0),), (0.25, *GRID))
    none = Rule(grid=GRID, seeds=(0,), top_k=1, first_seeds=1, top_seeds=1, edge_cap=0)
    assert next_stage(none, rising).stage == 0  # no widening without a cap


def test_widening_follows_the_selection_after_stage_2():
    """The edge is checked again once more seeds have moved the selection there."""
    results = full_grid({1.0: 0.5, 4.0: 0.6, 16.0: 0.7, 64.0: 0.69}, seeds=(0,))
    results |= {(16.0, s): 0.6 for s in (1, 2)} | {(64.0, s): 0.75 for s in (1, 2)}
    plan = next_stage(RULE, results)
    assert (plan.stage, plan.runs, plan.selected) == (1, ((256.0, 0),), 64.0)


def test_a_diverged_run_is_made_once_and_never_selected():
    results = {(1.0, 0): 0.7, (4.0, 0): None, (16.0, 0): 0.8, (64.0, 0): 0.75}
    plan = next_stage(RULE, results)
    assert (plan.stage, plan.runs) == (2, ((16.0, 1), (16.0, 2), (64.0, 1), (64.0, 2)))
    nothing = next_stage(RULE, {(p, 0): None for p in GRID})
    assert (nothing.stage, nothing.selected) == (0, None)  # nothing to select by: nothing more to run


def test_step_out_and_the_reachable_points():
    assert step_out([1.0, 4.0, 16.0], "high") == 64.0 and step_out([1.0, 4.0, 16.0], "low") == 0.25
    assert step_out([0.0, 0.1, 0.2], "low") == -0.1  # a grid through zero: its difference
    assert Rule(GRID, (0,), 1, 1, 1, edge_cap=2).reachable() == [0.0625, 0.25, *GRID, 256.0, 1024.0]
    assert Rule((1.0, 4.0), (0,), 1, 1, 1, edge_cap=2).reachable() == [1.0, 4.0]  # no edge below 3 points


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"first_seeds": 2, "top_seeds": 1}, "1 <= first_seeds 2 <= top_seeds 1 <= 3 seeds"),
        ({"top_seeds": 4}, "top_seeds 4 <= 3 seeds"),
        ({"top_k": 0}, "top_k >= 1 and edge_cap >= 0; got 0 and 1"),
        ({"grid": (1.0, 1.0, 4.0)}, r"distinct points; got \[1.0, 1.0, 4.0\]"),
    ],
)
def test_a_rule_names_its_bad_counts(kwargs, match):
    settings = {"grid": GRID, "seeds": (0, 1, 2), "top_k": 2, "first_seeds": 1, "top_seeds": 3, "edge_cap": 1}
    with pytest.raises(ValueError, match=match):
        Rule(**(settings | kwargs))


def test_replay_asks_a_finished_grid_for_the_runs_of_each_stage():
    archive = full_grid({1.0: 0.5, 4.0: 0.8, 16.0: 0.7, 64.0: 0.6})
    done = replay(RULE, archive)
    assert (done.plan.selected, len(done.made), done.lacking) == (4.0, 8, ())
    assert set(done.made) == {(p, 0) for p in GRID} | {(p, s) for p in (4.0, 16.0) for s in (1, 2)}
    edge = replay(RULE, full_grid({1.0: 0.5, 4.0: 0.6, 16.0: 0.7, 64.0: 0.8}))
    assert (edge.plan.selected, edge.lacking) == (64.0, ((256.0, 0),))  # asked past the finished grid
    assert len(edge.made) == 8
