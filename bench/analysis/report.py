"""The report: one self-contained HTML page, the verdict first, readable offline.

The page opens with the verdict (``bench.analysis.significance``): per task, the best method (the tuned row
with
the highest test mean), the methods tied with it (Welch's t-test over seeds, p >= ALPHA) and the cheapest
of those by trainable parameters, peak memory and train time; over three or more tasks, the same by
average rank (Friedman test, Nemenyi post-hoc). Then the plots (PNG, embedded as base64), every point and
bar named by its variant: the tuned score per variant (95% CI error bars, the axis from chance or zero);
the score against trainable parameters, peak memory and train time with the Pareto frontier marked; the
dev score against lr (how forgiving each method is of its lr); the average ranks and a critical-difference
diagram; the learning curves of each selected configuration (its dev metric from each run's
``history.jsonl``, mean ± std over seeds). A dashed line marks chance (the majority class) on every task.
The tables last: the compact tuned leaderboard (fits the page), every column, every configuration. The
runs come from a results folder's runs.csv, a sweep folder's run folders, or a runs CSV (``--csv``).

    python -m bench report --results results --out results/report.html
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import math
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scikit_posthocs
from matplotlib.figure import Figure

from bench.analysis import leaderboard, runs_table
from bench.analysis.selection import describe, sensitivity
from bench.analysis.significance import ALPHA, Friedman, friedman, overall_verdict, task_verdicts
from bench.inputs.metrics import DEV, TEST
from bench.plural import plural
from bench.results.run_folder import default_results, recorded_path

COST_AXES = (  # column, axis label, log scale
    ("trainable_params", "trainable parameters", True),
    ("peak_memory_mb", "peak memory (MB)", False),
    ("train_time_s", "train time (s)", False),
)
MARKERS = "osD^vP*X"
CHANCE_MARGIN = 0.5  # a best within this many points (x100) of chance predicts the majority class
PAPER_PROTOCOL = "paper protocol: best epoch on the reported split"
WRAPPED = ("hparams", "budget")  # the compact table's columns that wrap, so that it fits the page
STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;padding:0 1em;max-width:1400px;color:#222}
h1{margin-bottom:.2em} h2{margin-top:1.6em;border-bottom:1px solid #ddd}
img{max-width:100%;display:block;margin:.5em 0} .note{color:#8a5a00}
table.leaderboard,table.verdict{border-collapse:collapse;font-size:12px}
.leaderboard td,.leaderboard th,.verdict td,.verdict th{padding:2px 6px;border:1px solid #ccc}
.leaderboard td{text-align:right;white-space:nowrap} .leaderboard tr:nth-child(even){background:#f6f6f6}
.verdict td,.verdict th{text-align:left;vertical-align:top} #verdict p{margin:.4em 0}
.fit table.leaderboard{width:100%;font-size:11px} .fit .leaderboard th{overflow-wrap:anywhere}
ul.notes{font-size:13px;color:#444} .wide{overflow-x:auto} figcaption{font-size:13px;color:#444}"""


def selected_rows(tuned: pd.DataFrame) -> pd.DataFrame:
    """The tuned rows that selected a scored configuration (one per task, variant, model, budget), no
    averages: a row to select on dev needs a dev score (the tuned table keeps one without, to count
    its runs)."""
    on_test = tuned["select_on"].eq(TEST) if "select_on" in tuned else False
    keep = (tuned["task"] != leaderboard.AVG_TASK) & tuned["mean_x100"].notna()
    return tuned[keep & (tuned["dev_x100"].notna() | on_test)].reset_index(drop=True)


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
    tasks = leaderboard.sort_tasks(data["task"])
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


def cost_figure(rows: pd.DataFrame, column: str, xlabel: str, logx: bool, style: Style) -> Figure | None:
    """Tuned score vs a cost per task, one named point per variant; the Pareto frontier dashed, ringed."""
    data = rows[rows[column].notna() & (rows[column] > 0)]
    if data.empty:
        return None
    fig, panels = task_panels(data)
    for ax, task, d in panels:
        x, y = d[column].to_numpy(float), d["mean_x100"].to_numpy(float)
        for (variant, model), g in d.groupby(["variant", "model"]):
            ax.scatter(
                g[column],
                g["mean_x100"],
                color=style.colors[variant],
                marker=style.markers[model],
                s=40,
                zorder=3,
            )
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
    tasks = leaderboard.sort_tasks(rows["task"])
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


def rank_table(test: Friedman) -> str:
    """Average rank and the test mean per task of each variant, best rank first, as an HTML table."""
    table = test.scores.T.loc[test.avg_rank.index]
    table.insert(0, "avg_rank", test.avg_rank)
    return leaderboard.cells(table.reset_index()).to_html(index=False, classes="leaderboard")


def read_history(path: Path) -> pd.DataFrame | None:
    """The rows of a history.jsonl, or None when the file is missing or has no step."""
    if not path.is_file():
        return None
    hist = pd.DataFrame([json.loads(line) for line in path.read_text().splitlines() if line.strip()])
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
        path = recorded_path(run["run_dir"], source) / "history.jsonl"
        hist = read_history(path)
        key = None if hist is None else curve_key(hist.columns, run["main_metric"])
        if key is None:
            missing.append(f"{run['run_name']}: no {run['main_metric']!r} curve in {path}")
            continue
        curves.append(hist[["step", key]].dropna().set_index("step")[key] * 100)
        keys.add(key)
    return curves, keys, missing


def curves_figure(
    runs: pd.DataFrame, rows: pd.DataFrame, source: Path, style: Style
) -> tuple[Figure | None, list[str]]:
    """The dev metric vs step of each variant's selected configuration, mean ± std over seeds; lists
    the runs without a curve."""
    done = dict(list(runs[runs["status"] == "completed"].groupby(runs_table.LABELLED)))
    missing: list[str] = []
    tasks = leaderboard.sort_tasks(rows["task"])
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


def note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def names(variants: list[str]) -> str:
    return ", ".join(variants) or "none"


def cheapest_text(cheapest: dict[str, str]) -> str:
    """ "trainable parameters: lora; peak memory: lora; train time: dora"."""
    return "; ".join(f"{what}: {variant}" for what, variant in cheapest.items()) or "no cost recorded"


def overall_html(verdict: dict[str, Any]) -> str:
    """The verdict over all tasks: best by average rank, its Nemenyi ties, the cheapest of those; none of
    them when the Friedman test finds no difference in the ranks (a "cheapest of the tied" would then
    name the worst variant as often as not)."""
    test: Friedman = verdict["friedman"]
    tasks = f"Over all {plural(len(test.tasks), 'task')} ({', '.join(test.tasks)})"
    friedman = f"Friedman test over the ranks: χ² = {test.statistic:.2f}, p = {test.p:.3g}"
    if test.p >= ALPHA:
        text = (
            f"{tasks}: the ranks do not tell the variants apart ({friedman}, >= {ALPHA}), so no overall best "
            f"or cheapest is named; read the verdict of each task below. Best average rank: "
            f"{verdict['best']} ({test.avg_rank.iloc[0]:.2f})"
        )
    else:
        text = (
            f"{tasks}: best {verdict['best']} (average rank {test.avg_rank.iloc[0]:.2f}); tied with it "
            f"(Nemenyi, p >= {ALPHA}): {names(verdict['tied'])}; cheapest of those (mean over the tasks): "
            f"{cheapest_text(verdict['cheapest'])}. {friedman}"
        )
    return f"<p><b>{html.escape(text)}.</b></p>"


def task_cells(v: dict[str, Any]) -> list[str]:
    """A task's verdict as cells: task, best (its hparams, test mean ± CI, n), tied, cheapest, remarks."""
    best, chance, remarks = v["best"], v["chance_x100"], []
    if best.get("select_on") == TEST:
        remarks.append(PAPER_PROTOCOL)
    if chance is not None and not pd.isna(chance) and best["mean_x100"] < chance + CHANCE_MARGIN:
        remarks.append(f"at chance ({chance:.2f}): the best predicts the majority class")
    if v["untested"]:
        remarks.append(f"not tested (fewer than 2 seeds): {names(v['untested'])}")
    return [v["task"], describe(best), names(v["tied"]), cheapest_text(v["cheapest"]), "; ".join(remarks)]


def verdict_section(tuned: pd.DataFrame, test: Friedman | None) -> str:
    """The verdict: over all tasks (when the rank tests apply), then a row per task."""
    verdicts = task_verdicts(tuned)
    overall = overall_verdict(tuned, test)
    head = ["task", "best (test mean ± 95% CI)", "tied with the best", "cheapest of best + tied", "remarks"]
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in task_cells(v)) + "</tr>" for v in verdicts
    )
    parts = ['<section id="verdict"><h2>Verdict</h2>']
    if overall:
        parts.append(overall_html(overall))
    elif len(verdicts) > 1:
        parts.append(note("No verdict over all tasks: the rank tests need 3+ tasks and 3+ variants on all."))
    method = (
        f"Per task, best: the highest test mean of the tuned rows; tied: not told apart from it by Welch's "
        f"t-test over seeds (p >= {ALPHA}); cheapest: the lowest cost among the best and the tied."
    )
    parts += [
        f"<p>{html.escape(method)}</p>",
        '<table class="verdict"><thead><tr>' + "".join(f"<th>{html.escape(h)}</th>" for h in head),
        f"</tr></thead><tbody>{body}</tbody></table></section>",
    ]
    return "\n".join(parts)


def rank_sections(test: Friedman | None, style: Style) -> list[str]:
    """The average rank table and the critical-difference diagram (three or more tasks)."""
    if test is None:
        return []
    caption = (
        f"Average rank over {', '.join(test.tasks)} (1 = best); a bar joins the variants the Nemenyi test "
        f"cannot tell apart (p >= {ALPHA}); Friedman χ² = {test.statistic:.2f}, p = {test.p:.3g}. "
        "Demšar, Statistical comparisons of classifiers over multiple data sets, JMLR 7 (2006)."
    )
    return [
        "<h2>Average rank over the tasks</h2>",
        rank_table(test),
        f"<figure>{png(cd_figure(test, style), 'critical difference diagram')}",
        f"<figcaption>{html.escape(caption)}</figcaption></figure>",
    ]


def plot_sections(runs: pd.DataFrame, rows: pd.DataFrame, test: Friedman | None, source: Path) -> list[str]:
    """The plots, in order: bars, score vs each cost, sensitivity, ranks, learning curves."""
    if rows.empty:
        return [
            note(
                "No completed runs: nothing to plot (failed, diverged and oom runs are counted in the table)."
            )
        ]
    configs = leaderboard.configurations(runs)
    style = Style(configs)
    out = [
        "<h2>Score per variant (tuned; error bars: 95% CI over seeds; hatched: tied with the best)</h2>",
        png(bars_figure(rows, style), "score per variant"),
    ]
    for column, label, logx in COST_AXES:
        out.append(f"<h2>Score vs {label}</h2>")
        fig = cost_figure(rows, column, label, logx, style)
        out.append(png(fig, f"score vs {label}") if fig else note(f"No run recorded {column}: plot skipped."))
    out.append(
        "<h2>Dev score vs lr (how forgiving a method is of its lr is part of its cost; ringed: selected)</h2>"
    )
    fig = sensitivity_figure(sensitivity(configs), rows, style)
    out.append(
        png(fig, "dev score vs lr")
        if fig
        else note("No dev score with an lr (rows selected on test have none): plot skipped.")
    )
    out += rank_sections(test, style)
    out.append("<h2>Learning curves of the selected configurations (dev metric, mean ± std over seeds)</h2>")
    fig, missing = curves_figure(runs, rows, source, style)
    out.append(png(fig, "learning curves") if fig else note("No learning curve to draw."))
    if missing:
        items = "".join(f"<li>{html.escape(m)}</li>" for m in missing)
        out.append(f'<p class="note">Skipped (no history):</p><ul class="note">{items}</ul>')
    return out


def wrap_css(columns: list[str]) -> str:
    """CSS letting the compact table's WRAPPED columns wrap (by their position)."""
    return "".join(
        f".fit .leaderboard td:nth-child({i}){{white-space:normal}}"
        for i, c in enumerate(columns, 1)
        if c in WRAPPED
    )


def table_sections(runs: pd.DataFrame, compact: pd.DataFrame, tuned: pd.DataFrame) -> list[str]:
    """The compact tuned table (fits the page), every column of it, and every configuration (collapsed)."""
    return [
        "<h2>Leaderboard</h2>",
        f'<div class="fit">{leaderboard.cells(compact).to_html(index=False, classes="leaderboard")}</div>',
        "<h3>Every column (what each column means)</h3>",
        f'<div class="wide">{leaderboard.render(tuned, "html")}</div>',
        "<details><summary>Every configuration (each point of each grid, none selected)</summary>",
        f'<div class="wide">{leaderboard.render(leaderboard.aggregate(runs), "html")}</div></details>',
    ]


def build_report(source: str | Path) -> str:
    """The whole page as a string; ``source``: a results or sweep folder, or a runs CSV."""
    source = Path(source)
    runs = runs_table.load(source)
    tuned = leaderboard.tuned_board(runs, full=True)
    compact = leaderboard.tuned_board(runs)
    rows = selected_rows(tuned)
    test = friedman(rows)
    done = int((runs["status"] == "completed").sum())
    summary = (
        f"{plural(len(runs), 'run')} ({done:,} completed, {len(runs) - done:,} failed, diverged or oom) on "
        f"{', '.join(leaderboard.sort_tasks(runs['task']))}; from {source}, {datetime.now():%Y-%m-%d %H:%M}. "
        "Score = test metric at the epoch selected on the dev set (rows marked select_on test: on the "
        "reported split, as the papers do); each variant at its configuration with the best mean dev "
        "score; means over seeds, ×100."
    )
    body = [
        f"<h1>peft-bench report</h1><p>{html.escape(summary)}</p>",
        verdict_section(rows, test),
        *plot_sections(runs, rows, test, source),
        *table_sections(runs, compact, tuned),
    ]
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>peft-bench report</title>'
        f"<style>{STYLE}{wrap_css(list(compact.columns))}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="peft-bench report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default=default_results(), help=leaderboard.RESULTS_HELP)
    parser.add_argument("--csv", help="a runs CSV to read instead of --results")
    parser.add_argument("--out", help="HTML file (default: <results>/report.html)")
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out else Path(args.results) / "report.html"
    try:
        page = build_report(args.csv or args.results)
    except (FileNotFoundError, ValueError) as e:
        parser.error(str(e))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
