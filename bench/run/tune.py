"""``peft-bench tune experiment=compare [overrides]``: an experiment's grid tuned in stages, each stage a
plain Hydra multirun of ``train``, so every launcher, resume and W&B work as for any sweep.

The experiment's ``tune:`` section (``bench.config.schemas.TuneConfig``) states the counts and the swept
setting (``tune.grid``, ``train.lr_scale`` by default); its ``hydra.sweeper.params`` and the overrides
given (which win, as in ``train -m``) state the grid's points, the seeds and the cells (every other
swept setting: task and variant). Each round reads the results in the sweep folder (``hydra.sweep.dir``,
which must not change between launches), asks the planner (``bench.analysis.stages``) for each cell's
next stage, and runs those runs as few multiruns (cells that need the same runs are swept together);
then it reads them back, until no cell asks for more. A killed stage resumes, and the command run again
once all is done runs nothing. ``--dry-run`` prints the next round; ``--replay FOLDER`` replays the stages
on a finished full grid (never training) and says whether they select as the full grid.
"""

from __future__ import annotations

import argparse
import itertools
import math
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from bench.analysis import stages
from bench.analysis.runs_table import load_sweep
from bench.config.hashing import config_hash
from bench.config.store import compose
from bench.plural import plural

SEED = "seed"
COUNTS = ("top_k", "first_seeds", "top_seeds", "edge_cap")  # tune's settings that the experiment states
TRAIN = ("-m", "bench", "train", "-m")


@dataclass(frozen=True)
class Cell:
    """One (task, variant) of the grid, or whatever the other swept settings are: their values, and the
    config hash of each run it may make (every reachable point on every seed)."""

    values: tuple[str, ...]
    hashes: dict[stages.Run, str]

    def label(self, keys: Sequence[str]) -> str:
        return " ".join(f"{k}={v}" for k, v in zip(keys, self.values, strict=True))


@dataclass(frozen=True)
class Tuning:
    """What ``tune`` runs: the overrides every stage passes on, the cells' swept settings, the rule and
    the sweep folder."""

    fixed: tuple[str, ...]  # the overrides given, less the swept settings
    axes: dict[str, list[str]]  # the cells' swept settings (task, variant) and their values, in order
    grid: str  # tune.grid
    rule: stages.Rule
    sweep_dir: Path
    cells: tuple[Cell, ...]

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self.axes)


def swept_values(override: Any) -> list[Any]:
    return list(override.sweep_iterator()) if override.is_sweep_override() else [override.value()]


def sweep_axes(overrides: Sequence[str], params: dict[str, Any]) -> tuple[list[str], dict[str, list]]:
    """The overrides that are no swept setting, and every swept setting's values: the experiment's
    ``hydra.sweeper.params`` with the overrides given over them (a given override of a swept setting, or
    any given sweep, replaces it)."""
    parser = OverridesParser.create()
    axes = {
        o.key_or_group: swept_values(o)
        for o in parser.parse_overrides([f"{k}={v}" for k, v in params.items()])
    }
    fixed = []
    for o in parser.parse_overrides(list(overrides)):
        if o.is_sweep_override() or o.key_or_group in axes:
            axes[o.key_or_group] = swept_values(o)
        else:
            fixed.append(o.input_line)
    return fixed, axes


def like(value: float, current: Any) -> Any:
    """A grid point typed as the setting it replaces (an int setting gets an int)."""
    if isinstance(current, int) and not isinstance(current, bool) and float(value).is_integer():
        return int(value)
    return float(value) if isinstance(current, float) else value


def run_hashes(cfg: dict[str, Any], grid: str, rule: stages.Rule) -> dict[stages.Run, str]:
    """The config hash of each (point, seed) of a cell's composed config: its grid setting and seed set."""
    *parents, leaf = grid.split(".")
    section = cfg
    for key in parents:
        section = section.get(key) if isinstance(section, dict) else None
    if not isinstance(section, dict) or leaf not in section:
        raise ValueError(f"tune.grid {grid!r} is no setting of the config")
    current = section[leaf]
    hashes = {}
    for point, seed in itertools.product(rule.reachable(), rule.seeds):
        section[leaf], cfg[SEED] = like(point, current), seed
        hashes[(point, seed)] = config_hash(cfg)
    return hashes


def check_folders(sweep: dict[str, str]) -> None:
    """Stages write into one sweep folder, so it must not change between launches (no ``${now:...}``),
    and its run folders must be named by their settings, not by their job's number in a stage."""
    if "${now:" in sweep["dir"]:
        raise ValueError(
            f"tune needs a sweep folder that stays the same between launches; hydra.sweep.dir is "
            f"{sweep['dir']!r}: set one (hydra.sweep.dir=results/mine), as experiment=compare does"
        )
    if "hydra.job.num" in sweep["subdir"]:
        raise ValueError(
            f"tune needs run folders named by their settings; hydra.sweep.subdir is {sweep['subdir']!r}, "
            "numbered per stage: set one, as experiment=compare does"
        )


def plan_tuning(overrides: Sequence[str]) -> Tuning:
    """The experiment that ``overrides`` compose, read for ``tune``: its stages' settings and cells."""
    given = [o for o in overrides if o not in ("-m", "--multirun")]
    singles = [
        o.input_line for o in OverridesParser.create().parse_overrides(given) if not o.is_sweep_override()
    ]
    cfg = compose(singles, return_hydra_config=True)
    unset = [k for k in COUNTS if OmegaConf.is_missing(cfg.tune, k)]
    if unset:
        raise ValueError(
            f"the experiment sets no tune.{', tune.'.join(unset)}: state them in its tune section "
            "(conf/experiment/compare.yaml has one) or as overrides (tune.top_k=2 ...)"
        )
    check_folders(OmegaConf.to_container(cfg.hydra.sweep, resolve=False))
    params = OmegaConf.to_container(cfg.hydra.sweeper.params, resolve=True) or {}
    fixed, axes = sweep_axes(given, params)
    grid = cfg.tune.grid
    if grid not in axes:
        raise ValueError(f"tune.grid {grid!r} is not swept; swept: {', '.join(axes) or '(nothing)'}")
    points = axes.pop(grid)
    if not all(isinstance(p, (int, float)) and not isinstance(p, bool) for p in points):
        raise ValueError(f"tune.grid {grid!r} must sweep numbers; it sweeps {', '.join(map(str, points))}")
    rule = stages.Rule(
        grid=tuple(float(p) for p in points),
        seeds=tuple(int(s) for s in axes.pop(SEED, [cfg.seed])),
        **{k: cfg.tune[k] for k in COUNTS},
    )
    values = {k: [str(v) for v in vs] for k, vs in axes.items()}
    cells = []
    for combo in itertools.product(*values.values()):
        composed = compose([*fixed, *(f"{k}={v}" for k, v in zip(values, combo, strict=True))])
        container = OmegaConf.to_container(composed, resolve=True)
        container.pop("hydra", None)
        cells.append(Cell(combo, run_hashes(container, grid, rule)))
    return Tuning(tuple(fixed), values, grid, rule, Path(cfg.hydra.sweep.dir), tuple(cells))


def read_results(tuning: Tuning, folder: Path) -> list[dict[stages.Run, float | None]]:
    """Each cell's results in ``folder`` (its run folders' metrics.json): a completed run's selection
    score (dev; test under select_on test), None for a diverged one; a failed, oom or interrupted run is
    left out, so it runs again."""
    try:
        runs = load_sweep(folder)
    except FileNotFoundError:
        runs = pd.DataFrame(columns=["config_hash", "status", "dev_score", "score", "select_on"])
    by_hash = {}
    for row in runs.itertuples():
        score = row.score if row.select_on == "test" else row.dev_score
        if row.status == "completed":
            by_hash[row.config_hash] = None if pd.isna(score) else float(score)
        elif row.status == "diverged":
            by_hash[row.config_hash] = None
    return [{run: by_hash[h] for run, h in cell.hashes.items() if h in by_hash} for cell in tuning.cells]


def products(cells: list[tuple[str, ...]], axes: dict[str, list[str]]) -> list[tuple[tuple[str, ...], ...]]:
    """``cells`` as few products of per-setting values (a sweep each): two products that differ in one
    setting are merged, until none do."""
    boxes = [tuple((v,) for v in cell) for cell in cells]
    order = [{v: i for i, v in enumerate(vs)} for vs in axes.values()]
    merged = True
    while merged:
        merged = False
        for i, j in itertools.combinations(range(len(boxes)), 2):
            differ = [a for a, (x, y) in enumerate(zip(boxes[i], boxes[j], strict=True)) if x != y]
            if len(differ) == 1:
                a = differ[0]
                both = tuple(sorted({*boxes[i][a], *boxes[j][a]}, key=order[a].get))
                boxes[i] = (*boxes[i][:a], both, *boxes[i][a + 1 :])
                del boxes[j]
                merged = True
                break
    return boxes


def fmt(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def stage_sweeps(tuning: Tuning, plans: list[stages.Plan]) -> list[tuple[int, list[str], int]]:
    """The multiruns of a round: (stage, the overrides of ``train -m``, its number of runs)."""
    groups: dict[tuple[int, tuple[float, ...], tuple[int, ...]], list[tuple[str, ...]]] = {}
    for cell, plan in zip(tuning.cells, plans, strict=True):
        seeds_of: dict[float, list[int]] = {}
        for point, seed in plan.runs:
            seeds_of.setdefault(point, []).append(seed)
        points_of: dict[tuple[int, ...], list[float]] = {}
        for point, seeds in seeds_of.items():
            points_of.setdefault(tuple(sorted(seeds)), []).append(point)
        for seeds, points in points_of.items():
            groups.setdefault((plan.stage, tuple(sorted(points)), seeds), []).append(cell.values)
    sweeps = []
    for (stage, points, seeds), cells in sorted(groups.items()):
        for box in products(cells, tuning.axes):
            swept = [f"{k}={','.join(vs)}" for k, vs in zip(tuning.keys, box, strict=True)]
            swept += [f"{tuning.grid}={','.join(map(fmt, points))}", f"{SEED}={','.join(map(str, seeds))}"]
            runs = math.prod(len(vs) for vs in box) * len(points) * len(seeds)
            sweeps.append((stage, [*tuning.fixed, *swept], runs))
    return sweeps


def command(overrides: list[str]) -> str:
    return shlex.join(["python", *TRAIN, *overrides])


def show_round(sweeps: list[tuple[int, list[str], int]], plans: list[stages.Plan]) -> None:
    """Each stage of the round: what it is, its cells and runs, and its multiruns."""
    for stage in sorted({s for s, _, _ in sweeps}):
        cells = sum(p.stage == stage for p in plans)
        runs = sum(n for s, _, n in sweeps if s == stage)
        print(f"stage {stage}, {stages.STAGES[stage]}: {plural(runs, 'run')} in {plural(cells, 'cell')}")
        for s, overrides, _ in sweeps:
            if s == stage:
                print(f"  {command(overrides)}")


def show_selection(tuning: Tuning, results: list[dict], plans: list[stages.Plan]) -> None:
    """Each cell's selection and the seeds of each point of its grid."""
    for cell, found, plan in zip(tuning.cells, results, plans, strict=True):
        seeds = " ".join(f"{fmt(p)}:{sum((p, s) in found for s in tuning.rule.seeds)}" for p in plan.points)
        chosen = "-" if plan.selected is None else fmt(plan.selected)
        print(f"  {cell.label(tuning.keys)}: {tuning.grid}={chosen} (seeds per point {seeds})")


def tune(tuning: Tuning, dry_run: bool = False) -> int:
    """Run rounds of stages until no cell asks for a run; returns the exit status."""
    asked_before = None
    while True:
        results = read_results(tuning, tuning.sweep_dir)
        plans = [stages.next_stage(tuning.rule, found) for found in results]
        made = sum(len(found) for found in results)
        if not any(plan.runs for plan in plans):
            print(
                f"nothing to run: every stage of {plural(len(plans), 'cell')} is complete "
                f"({plural(made, 'run')} in {tuning.sweep_dir})"
            )
            show_selection(tuning, results, plans)
            print(f"the tuned leaderboard: python -m bench leaderboard --results {tuning.sweep_dir}")
            return 0
        sweeps = stage_sweeps(tuning, plans)
        show_round(sweeps, plans)
        if dry_run:
            print(
                f"({plural(made, 'run')} in {tuning.sweep_dir} so far; later stages follow from these runs)"
            )
            return 0
        asked = [(cell.values, plan.runs) for cell, plan in zip(tuning.cells, plans, strict=True)]
        if asked == asked_before:
            print(
                "error: the runs above ran and still have no result (failed?): "
                "python -m bench failed_runs lists them",
                file=sys.stderr,
            )
            return 1
        asked_before = asked
        for stage, overrides, _ in sweeps:
            print(f"stage {stage}: {command(overrides)}", flush=True)
            code = subprocess.call([sys.executable, *TRAIN, *overrides])
            if code:
                print(
                    f"error: stage {stage}'s sweep exited with {code}; the same tune command resumes",
                    file=sys.stderr,
                )
                return code


def show_replay(tuning: Tuning, folder: Path) -> int:
    """The stages replayed on the finished grid in ``folder``: per cell the staged and the full grid's
    selection and the runs each made; exits 1 when some cell selects otherwise."""
    agree = made = full = 0
    for cell, archive in zip(tuning.cells, read_results(tuning, folder), strict=True):
        done = stages.replay(tuning.rule, archive)
        whole = stages.select(sorted({p for p, _ in archive}), tuning.rule.seeds, archive)
        agree += done.plan.selected == whole
        made, full = made + len(done.made), full + len(archive)
        print(
            f"  {cell.label(tuning.keys)}: staged {fmt(done.plan.selected)} in "
            f"{plural(len(done.made), 'run')}, full grid {fmt(whole)} in {plural(len(archive), 'run')}"
        )
    cells = len(tuning.cells)
    print(f"staged: {plural(made, 'run')} of {full:,}; the same selection in {agree} of {cells} cells")
    return 0 if agree == cells else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="peft-bench tune", description=__doc__.split("\n\n")[0])
    p.add_argument("overrides", nargs="*", help="Hydra overrides, as for train -m (experiment=compare ...)")
    p.add_argument("--dry-run", action="store_true", help="print the next round's runs per stage; run none")
    p.add_argument("--replay", metavar="FOLDER", help="replay the stages on the finished grid in FOLDER")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        tuning = plan_tuning(args.overrides)
        if args.replay:
            return show_replay(tuning, Path(args.replay))
        return tune(tuning, args.dry_run)
    except KeyboardInterrupt:
        sys.exit("interrupted: the same tune command resumes")
    except Exception as e:  # noqa: BLE001 - one line, as train prints its errors
        sys.exit(f"error: {' '.join(str(e).split())}")


if __name__ == "__main__":
    sys.exit(main())
