"""Staged tuning: which runs of a grid to make next, from the results so far (``peft-bench tune``).

A cell (one task and variant of an experiment, say) tunes one swept setting over the points of a grid, each
run on the experiment's seeds, in order. ``next_stage`` computes the runs still to make from whatever
results exist, so a killed stage resumes and a finished cell asks for nothing:

1. every point on the first ``first_seeds`` seeds;
2. the ``top_k`` points with the best mean score on those seeds, on the first ``top_seeds`` seeds;
3. the selected point on every seed.

The selection is the leaderboard's (``bench.analysis.selection.best_candidate``): the best mean score
among the points with the most seeds. Whenever it sits at the lowest or highest of three or more points
(``bench.analysis.selection.grid_edge``), the next point out joins the grid, and stage 1, at the grid's
own step there (the ratio of its two outermost points on that side: x4 after 16, 64), up to ``edge_cap``
points past the grid on each side.

A cell's results map (point, seed) to the run's selection score (the dev score), or None for a run that
ended without one (diverged): it was made and is not made again. A run missing from them is still to
make. ``replay`` feeds the planner the results of a finished full grid, restricted to the runs it asks
for: what the stages would have run and selected.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from bench.analysis.selection import best_candidate, grid_edge

Run = tuple[float, int]  # (point, seed)
Results = Mapping[Run, float | None]
STAGES = {
    1: "every point on its first seeds",
    2: "the best points on more seeds",
    3: "the selected point on every seed",
}


@dataclass(frozen=True)
class Rule:
    """The stages of one grid: its points, the seeds in order and the counts (``TuneConfig``)."""

    grid: tuple[float, ...]
    seeds: tuple[int, ...]
    top_k: int
    first_seeds: int
    top_seeds: int
    edge_cap: int

    def __post_init__(self) -> None:
        counts = f"first_seeds {self.first_seeds} <= top_seeds {self.top_seeds} <= {len(self.seeds)} seeds"
        if not 1 <= self.first_seeds <= self.top_seeds <= len(self.seeds):
            raise ValueError(f"tune needs 1 <= {counts} (the sweep's seed values)")
        if self.top_k < 1 or self.edge_cap < 0:
            raise ValueError(f"tune needs top_k >= 1 and edge_cap >= 0; got {self.top_k} and {self.edge_cap}")
        if not self.grid or len(set(self.grid)) != len(self.grid):
            raise ValueError(f"tune needs a grid of distinct points; got {list(self.grid)}")

    def reachable(self) -> list[float]:
        """Every point a cell may run: the grid and up to ``edge_cap`` points past it on each side."""
        points = sorted(self.grid)
        for _ in range(self.edge_cap if len(points) >= 3 else 0):
            points = [step_out(points, "low"), *points, step_out(points, "high")]
        return points


@dataclass(frozen=True)
class Plan:
    """A cell's next stage: its runs (none when the cell is complete), the points of its grid so far
    (with those widening added) and the selection from the results so far (None before any score)."""

    stage: int  # 1, 2 or 3; 0: complete
    runs: tuple[Run, ...]
    points: tuple[float, ...]
    selected: float | None


def step_out(points: list[float], side: str) -> float:
    """The next point past the ``side`` ("low" or "high") end of sorted ``points``, at their step there:
    the ratio of the two outermost points when both are positive, else their difference."""
    end, inner = (points[0], points[1]) if side == "low" else (points[-1], points[-2])
    out = end * (end / inner) if end > 0 and inner > 0 else end + (end - inner)
    return float(f"{out:.12g}")


def scores(results: Results, point: float, seeds: tuple[int, ...]) -> list[float]:
    """The scores of ``point`` on ``seeds`` (those with one)."""
    values = (results.get((point, seed)) for seed in seeds)
    return [v for v in values if v is not None and not math.isnan(v)]


def select(points: list[float], seeds: tuple[int, ...], results: Results) -> float | None:
    """The selected point: the leaderboard's choice (``best_candidate``) among ``points``."""
    done = [[s for s in seeds if scores(results, p, (s,))] for p in points]
    candidates = pd.DataFrame(
        {
            "lr": points,
            "seeds_done": done,
            "seeds_run": [[s for s in seeds if (p, s) in results] for p in points],
        }
    )
    mean = pd.Series([sum(v) / len(v) if (v := scores(results, p, seeds)) else math.nan for p in points])
    chosen = best_candidate(candidates, mean)
    return None if chosen is None else points[chosen]


def top_points(rule: Rule, points: list[float], results: Results) -> list[float]:
    """The ``top_k`` points by their mean score on the first seeds (ties: the lowest point first)."""
    first = rule.seeds[: rule.first_seeds]
    means = {p: sum(s) / len(s) for p in points if (s := scores(results, p, first))}
    return sorted(means, key=lambda p: (-means[p], p))[: rule.top_k]


def widened(rule: Rule, points: list[float], chosen: float | None) -> float | None:
    """The point to add when ``chosen`` sits at an edge of ``points`` and the cap allows one more there."""
    side = grid_edge(pd.Series(points, dtype=float), math.nan if chosen is None else chosen)
    if not side:
        return None
    past = [p for p in points if (p < min(rule.grid) if side == "low" else p > max(rule.grid))]
    return step_out(points, side) if len(past) < rule.edge_cap else None


def missing(points: list[float], seeds: tuple[int, ...], results: Results) -> tuple[Run, ...]:
    return tuple((p, s) for p in points for s in seeds if (p, s) not in results)


def next_stage(rule: Rule, results: Results) -> Plan:
    """The runs a cell needs next, from its ``results`` (see the module docstring)."""
    points = sorted(rule.grid)
    while True:
        runs = missing(points, rule.seeds[: rule.first_seeds], results)
        if runs:
            return Plan(1, runs, tuple(points), select(points, rule.seeds, results))
        chosen = select(points, rule.seeds, results)
        extra = widened(rule, points, chosen)
        if extra is not None:
            points = sorted([*points, extra])
            continue
        runs = missing(top_points(rule, points, results), rule.seeds[: rule.top_seeds], results)
        if runs:
            return Plan(2, runs, tuple(points), chosen)
        runs = missing([chosen], rule.seeds, results) if chosen is not None else ()
        return Plan(3 if runs else 0, runs, tuple(points), chosen)


@dataclass(frozen=True)
class Replay:
    """What the stages would have done on a finished grid: the plan they end with, the runs they made,
    and the runs they asked for that the grid lacks (counted as runs without a result)."""

    plan: Plan
    made: tuple[Run, ...]
    lacking: tuple[Run, ...]


def replay(rule: Rule, archive: Results) -> Replay:
    """The stages run on ``archive`` (a finished grid's results): each stage's runs are looked up in it,
    never trained, until the planner asks for nothing more."""
    known: dict[Run, float | None] = {}
    while (plan := next_stage(rule, known)).stage:
        known.update({run: archive.get(run) for run in plan.runs})
    made = tuple(run for run in known if run in archive)
    return Replay(plan, made, tuple(run for run in known if run not in archive))
