"""The report's plots, as matplotlib figures and as PNG embedded in HTML (``png``), every point and bar
named by its variant, one colour per variant and one marker per model (``Style``): the tuned score per
variant (95% CI error bars, the axis from chance or zero); the score against trainable parameters, peak
memory and train time with the Pareto frontier marked and the points tied with the best filled; the dev
score against lr (how forgiving each method is of its lr); the critical-difference diagram of the average
ranks; the learning curves of each selected configuration (its dev metric from each run's
``history.jsonl``, mean ± std over seeds). A dashed line marks chance (the majority class) on every task."""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scikit_posthocs
from matplotlib.figure import Figure

from bench.analysis.runs_table import LABELLED, MEMORY_COLUMNS
from bench.analysis.selection import sort_tasks
from bench.analysis.significance import ALPHA, Friedman
from bench.inputs.metrics import DEV, TEST
from bench.results.run_folder import RunFolder, recorded_path

COST_AXES = (  # column, axis label, log scale
    ("trainable_params", "trainable parameters", True),
    ("peak_memory_mb", "peak memory (MB)", False),
    ("train_time_s", "train time (s)", False),
)
MARKERS = "osD^vP*X"
TIED_LABEL = "best or tied with it (filled)"
APART_LABEL = "not tied with the best (open)"
MEMORY_SHADES = ("0.55", "C0", "C2", "C1", "C3")  # frozen, trainable, gradients, optimizer, activations


def pareto_mask(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Points no other point beats on both axes (lower x, higher y)."""
    order = np.lexsort((-y, x))
    mask = np.zeros(len(x), dtype=bool)
    best = -np.inf
    for i in order:
        if y[i] > best:
            mask[i], best = True, y[i]
    return mask


class Style:
    """One colour per variant and one marker per model, the same in every plot."""

    def __init__(self, table: pd.DataFrame):
        self.colors = {v: f"C{i % 10}" for i, v in enumerate(sorted(table["variant"].unique()))}
        self.markers = {m: MARKERS[i % len(MARKERS)] for i, m in enumerate(sorted(table["model"].unique()))}
        self.many_models = len(self.markers) > 1

    def label(self, variant: str, model: str) -> str:
        return f"{variant} ({model})" if self.many_models else variant


def grid(n: int, width: float = 4.4, height: float = 3.4) -> tuple[Figure, list]:
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel().tolist()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def task_panels(data: pd.DataFrame) -> tuple[Figure, list[tuple[Any, str, pd.DataFrame]]]:
    """A figure with one panel per task of ``data``, and each panel's (axes, task, that task's rows)."""
    tasks = sort_tasks(data["task"])
    fig, axes = grid(len(tasks))
    return fig, [(ax, t, data[data["task"] == t]) for ax, t in zip(axes, tasks, strict=True)]


def shared_legend(fig: Figure, axes: list) -> None:
    """One legend for all panels, right of them."""
    entries: dict = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    if entries:
        fig.legend(entries.values(), entries.keys(), loc="outside right upper", fontsize=9)


def task_chance(rows: pd.DataFrame) -> float:
    """The chance score (x100) of a task's rows: their median; nan when no run recorded one."""
    values = rows["chance_x100"].dropna() if "chance_x100" in rows else pd.Series(dtype=float)
    return float(values.median()) if len(values) else math.nan


def chance_line(ax, chance: float) -> None:
    """A dashed horizontal line at the chance score, labelled "chance" (nothing when unknown)."""
    if math.isnan(chance):
        return
    ax.axhline(chance, ls="--", lw=1, color="0.45", zorder=1)
    ax.annotate(
        "chance", (0.01, chance), xycoords=("axes fraction", "data"), va="bottom", fontsize=7, color="0.3"
    )


def name_points(ax, xs, ys, names) -> None:
    """Each point labelled with its name, right of it, alternately above and below (close points)."""
    for i, (x, y, name) in enumerate(zip(xs, ys, names, strict=True)):
        ax.annotate(name, (x, y), xytext=(5, 3 - 10 * (i % 2)), textcoords="offset points", fontsize=7)


def tied_with_best(rows: pd.DataFrame) -> np.ndarray:
    """Per row, whether the leaderboard's ``tied`` marks it as the best or tied with it (untested: no)."""
    if "tied" not in rows:
        return np.zeros(len(rows), dtype=bool)
    return rows["tied"].eq(True).fillna(False).to_numpy(bool)


def tie_legend(ax) -> None:
    """Legend entries for the points' fill: filled, the best and the tied with it; open, the rest."""
    ax.scatter([], [], color="0.35", s=40, label=TIED_LABEL)
    ax.scatter([], [], facecolors="none", edgecolors="0.35", s=40, label=APART_LABEL)


def cost_figure(rows: pd.DataFrame, column: str, xlabel: str, logx: bool, style: Style) -> Figure | None:
    """Tuned score vs a cost per task, one named point per variant, filled when tied with the task's best
    (the leaderboard's ``tied``), open when not; the Pareto frontier dashed, ringed."""
    data = rows[rows[column].notna() & (rows[column] > 0)]
    if data.empty:
        return None
    fig, panels = task_panels(data)
    for ax, task, d in panels:
        x, y = d[column].to_numpy(float), d["mean_x100"].to_numpy(float)
        for (variant, model), g in d.groupby(["variant", "model"]):
            tied, color = tied_with_best(g), style.colors[variant]
            for keep, face in ((tied, color), (~tied, "none")):
                ax.scatter(g[column][keep], g["mean_x100"][keep], facecolors=face, edgecolors=color,
                           marker=style.markers[model], s=40, zorder=3)  # fmt: skip
        tie_legend(ax)
        name_points(ax, x, y, [style.label(v, m) for v, m in zip(d["variant"], d["model"], strict=True)])
        front = pareto_mask(x, y)
        order = np.argsort(x[front])
        fx, fy = x[front][order], y[front][order]
        ax.step(fx, fy, where="post", ls="--", color="0.35", lw=1, label="Pareto frontier", zorder=2)
        ax.scatter(fx, fy, s=140, facecolors="none", edgecolors="0.2", zorder=4)
        chance_line(ax, task_chance(d))
        ax.set(title=task, xlabel=xlabel, ylabel=f"test {d['main_metric'].iloc[0]} ×100")
        if logx:
            ax.set_xscale("log")
        ax.margins(x=0.2)
        ax.grid(alpha=0.3)
    shared_legend(fig, [ax for ax, _, _ in panels])
    return fig


def bar_floor(lows: np.ndarray, chance: float) -> float:
    """Where a task's bar axis starts: at chance when it is known and below every bar's low end (mean -
    CI), else at zero, or lower when a bar reaches below zero (a negative correlation)."""
    lowest = float(np.min(lows))
    if not math.isnan(chance) and chance <= lowest:
        return chance
    return min(0.0, lowest)


def bars_figure(rows: pd.DataFrame, style: Style) -> Figure:
    """The tuned test mean per variant with its 95% CI, per task; the axis from chance or zero; the best
    bar and the bars tied with it (hatched) marked."""
    tasks = sort_tasks(rows["task"])
    fig, axes = grid(len(tasks))
    for ax, task in zip(axes, tasks, strict=True):
        d = rows[rows["task"] == task].sort_values("mean_x100", ascending=False)
        mean, ci = d["mean_x100"].to_numpy(float), d["ci95_x100"].astype(float).fillna(0).to_numpy()
        chance = task_chance(d)
        floor, pos = bar_floor(mean - ci, chance), np.arange(len(d))
        marks = ["best"] + ["≈best" if t is True else "" for t in d["tied"].iloc[1:]]
        hatches = ["//" if m == "≈best" else "" for m in marks]
        ax.bar(pos, mean - floor, bottom=floor, yerr=ci, capsize=4, hatch=hatches, edgecolor="0.25",
               color=[style.colors[v] for v in d["variant"]])  # fmt: skip
        for p, m, c, mark, n in zip(pos, mean, ci, marks, d["n"], strict=True):
            ax.annotate(f"{m:.1f} {mark}\nn={n}", (p, m + c), ha="center", va="bottom", fontsize=7)
        top = float(np.max(mean + ci))
        ax.set_ylim(floor, top + 0.25 * (top - floor) + 1)
        chance_line(ax, chance)
        ticks = [
            style.label(v, m) + (f"\n{f} failed" if f else "")
            for v, m, f in zip(d["variant"], d["model"], d["failed"], strict=True)
        ]
        ax.set_xticks(pos, ticks, fontsize=8)
        ax.set(title=task, ylabel=f"test {d['main_metric'].iloc[0]} ×100")
        ax.grid(axis="y", alpha=0.3)
    return fig


def memory_figure(rows: pd.DataFrame, style: Style) -> Figure | None:
    """Per task, a stacked bar per variant of what holds a training step's memory (frozen and trainable
    weights, gradients, optimizer state, activations: ``memory_breakdown_mb``), a black tick at the step's
    peak, and the variant's tuned score beside its bar; None when no row recorded a breakdown."""
    parts, peak = list(MEMORY_COLUMNS[:-1]), MEMORY_COLUMNS[-1]
    data = rows.dropna(subset=[peak]) if peak in rows else rows.iloc[:0]
    if data.empty:
        return None
    fig, panels = task_panels(data)
    for ax, task, d in panels:
        d = d.sort_values("mean_x100")
        pos, left = np.arange(len(d)), np.zeros(len(d))
        for col, color in zip(parts, MEMORY_SHADES, strict=True):
            width = d[col].fillna(0).to_numpy(float)
            name = col.removeprefix("mem_").removesuffix("_mb").replace("_", " ")
            ax.barh(pos, width, left=left, color=color, edgecolor="0.25", lw=0.5, label=name)
            left += width
        ax.scatter(d[peak], pos, marker="|", s=300, color="k", zorder=4, label="peak")
        for p, end, score in zip(pos, np.maximum(left, d[peak].to_numpy(float)), d["mean_x100"], strict=True):
            ax.annotate(f"{score:.1f}", (end, p), xytext=(4, 0), textcoords="offset points", va="center",
                        fontsize=7)  # fmt: skip
        ax.set_yticks(
            pos, [style.label(v, m) for v, m in zip(d["variant"], d["model"], strict=True)], fontsize=8
        )
        ax.margins(x=0.15)
        ax.set(title=task, xlabel=f"MB (score: test {d['main_metric'].iloc[0]} ×100)")
        ax.grid(axis="x", alpha=0.3)
    shared_legend(fig, [ax for ax, _, _ in panels])
    return fig


def sensitivity_figure(sens: pd.DataFrame, rows: pd.DataFrame, style: Style) -> Figure | None:
    """Dev score vs lr per task, a line per variant named at its end, the selected lr ringed."""
    data = sens.dropna(subset=["dev_x100", "lr"])
    if data.empty:
        return None
    fig, panels = task_panels(data)
    for ax, task, d in panels:
        for (variant, model), g in d.groupby(["variant", "model"]):
            g = g.sort_values("lr")
            ax.plot(g["lr"], g["dev_x100"], color=style.colors[variant], marker=style.markers[model], ms=4)
            name_points(ax, g["lr"].iloc[-1:], g["dev_x100"].iloc[-1:], [style.label(variant, model)])
            picked = g[g["selected"]]
            ax.scatter(picked["lr"], picked["dev_x100"], s=140, facecolors="none", edgecolors="0.2", zorder=4)
        chance_line(ax, task_chance(rows[rows["task"] == task]))
        ax.set_xscale("log")
        ax.margins(x=0.25)
        metric = rows.loc[rows["task"] == task, "main_metric"]
        ax.set(title=task, xlabel="lr", ylabel=f"dev {metric.iloc[0] if len(metric) else 'score'} ×100")
        ax.grid(alpha=0.3)
    return fig


def cd_figure(test: Friedman, style: Style) -> Figure:
    """The Nemenyi critical-difference diagram of the variants' average ranks."""
    fig = Figure(figsize=(8, 1.2 + 0.3 * len(test.avg_rank)), layout="constrained")
    colors = {v: style.colors[v] for v in test.avg_rank.index}
    scikit_posthocs.critical_difference_diagram(
        test.avg_rank, test.nemenyi, ax=fig.subplots(), alpha=ALPHA, color_palette=colors
    )
    return fig


def read_history(run: RunFolder) -> pd.DataFrame | None:
    """The rows of a run's history.jsonl, or None when the file is missing or has no step."""
    if not run.history_path.is_file():
        return None
    hist = pd.DataFrame(run.history())
    return hist if "step" in hist.columns else None


def curve_key(columns, main: str) -> str | None:
    """The history key to plot: ``dev/<dev metric>`` (the main metric without a test split's suffix),
    else ``test/<main>``, else the bare main metric of an older run; None when none is there."""
    devs = [c.removeprefix(f"{DEV}/") for c in columns if c.startswith(f"{DEV}/")]
    matches = [m for m in devs if main == m or main.startswith(f"{m}_")]
    if matches:
        return f"{DEV}/{max(matches, key=len)}"
    return next((k for k in (f"{TEST}/{main}", main) if k in columns), None)


def seed_curves(runs: pd.DataFrame, source: Path) -> tuple[list[pd.Series], set[str], list[str]]:
    """Each run's curve (x100, indexed by step), the keys plotted, and a line per run without one."""
    curves, keys, missing = [], set(), []
    for _, run in runs.iterrows():
        folder = RunFolder(recorded_path(run["run_dir"], source))
        hist = read_history(folder)
        key = None if hist is None else curve_key(hist.columns, run["main_metric"])
        if key is None:
            missing.append(f"{run['run_name']}: no {run['main_metric']!r} curve in {folder.history_path}")
            continue
        curves.append(hist[["step", key]].dropna().set_index("step")[key] * 100)
        keys.add(key)
    return curves, keys, missing


def curves_figure(
    runs: pd.DataFrame, rows: pd.DataFrame, source: Path, style: Style
) -> tuple[Figure | None, list[str]]:
    """The dev metric vs step of each variant's selected configuration, mean ± std over seeds; lists
    the runs without a curve."""
    done = dict(list(runs[runs["status"] == "completed"].groupby(LABELLED)))
    missing: list[str] = []
    tasks = sort_tasks(rows["task"])
    fig, axes = grid(len(tasks))
    drawn = False
    for ax, task in zip(axes, tasks, strict=True):
        keys: set[str] = set()
        for _, cfg in rows[rows["task"] == task].iterrows():
            curves, used, lost = seed_curves(
                done[(task, cfg["variant"], cfg["model"], cfg["hparams"])], source
            )
            missing, keys = missing + lost, keys | used
            if not curves:
                continue
            both = pd.concat(curves, axis=1)
            mean, std = both.mean(axis=1), both.std(axis=1).fillna(0)
            color, name = style.colors[cfg["variant"]], style.label(cfg["variant"], cfg["model"])
            ax.plot(mean.index, mean, color=color, marker=".", label=name)
            ax.fill_between(mean.index, mean - std, mean + std, color=color, alpha=0.15)
            name_points(ax, mean.index[-1:], mean.iloc[-1:], [name])
            drawn = True
        chance_line(ax, task_chance(rows[rows["task"] == task]))
        ax.set(title=task, xlabel="step", ylabel=" / ".join(sorted(keys)) + " ×100")
        ax.grid(alpha=0.3)
    shared_legend(fig, axes)
    return (fig if drawn else None), missing


def png(fig: Figure, alt: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
