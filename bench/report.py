"""The report: one self-contained HTML page of plots and the leaderboard, readable offline.

Plots (PNG, embedded as base64): the main metric against trainable parameters, peak memory and train time
per task with the Pareto frontier marked; bars per variant with seed error bars; learning curves from
each run's ``history.jsonl`` (mean over seeds). Then the leaderboard table (``bench.leaderboard``). Each
configuration point is the mean over seeds of the main metric at the best epoch, x100. The runs come from
a results folder's runs.csv, a sweep folder's run folders, or a runs CSV (``--csv``).

    python -m bench.report --results results --out results/report.html
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

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from bench import leaderboard
from bench.plural import plural
from bench.results import default_results, recorded_path

COST_AXES = (  # column, axis label, log scale
    ("trainable_params", "trainable parameters", True),
    ("peak_memory_mb", "peak memory (MB)", False),
    ("train_time_s", "train time (s)", False),
)
MARKERS = "osD^vP*X"
STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1300px;color:#222}
h1{margin-bottom:.2em} h2{margin-top:1.6em;border-bottom:1px solid #ddd}
img{max-width:100%;display:block;margin:.5em 0} .note{color:#8a5a00}
table.leaderboard{border-collapse:collapse;font-size:12px} .leaderboard td,.leaderboard th{padding:2px 6px;
border:1px solid #ccc;text-align:right;white-space:nowrap} .leaderboard tr:nth-child(even){background:#f6f6f6}
ul.notes{font-size:13px;color:#444} .wide{overflow-x:auto}"""


def scored_configs(table: pd.DataFrame) -> pd.DataFrame:
    """Configurations with at least one completed run (no averages, no published rows)."""
    return table[(table["task"] != leaderboard.AVG_TASK) & (table["seeds"].fillna(0) > 0)]


def best_configs(table: pd.DataFrame) -> pd.DataFrame:
    """The best configuration (highest mean) per (task, variant, model)."""
    configs = scored_configs(table).sort_values("mean_x100", kind="stable")
    return configs.drop_duplicates(["task", "variant", "model"], keep="last").sort_values(
        ["variant", "model"]
    )


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


def shared_legend(fig: Figure, axes: list) -> None:
    """One legend for all panels, right of them."""
    entries: dict = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    if entries:
        fig.legend(entries.values(), entries.keys(), loc="outside right upper", fontsize=9)


def cost_figure(configs: pd.DataFrame, column: str, xlabel: str, logx: bool, style: Style) -> Figure | None:
    """Main metric vs a cost per task; the Pareto frontier dashed, its points ringed."""
    data = configs[configs[column].notna() & (configs[column] > 0)]
    if data.empty:
        return None
    tasks = leaderboard.sort_tasks(data["task"])
    fig, axes = grid(len(tasks))
    for ax, task in zip(axes, tasks, strict=True):
        d = data[data["task"] == task]
        x, y = d[column].to_numpy(float), d["mean_x100"].to_numpy(float)
        for (variant, model), g in d.groupby(["variant", "model"]):
            ax.scatter(
                g[column],
                g["mean_x100"],
                color=style.colors[variant],
                marker=style.markers[model],
                s=40,
                label=style.label(variant, model),
                zorder=3,
            )
        front = pareto_mask(x, y)
        fx, fy = x[front], y[front]
        ax.step(
            fx[np.argsort(fx)],
            fy[np.argsort(fx)],
            where="post",
            ls="--",
            color="0.35",
            lw=1,
            label="Pareto frontier",
            zorder=2,
        )
        ax.scatter(fx, fy, s=140, facecolors="none", edgecolors="0.2", zorder=4)
        ax.set(title=task, xlabel=xlabel, ylabel=f"{d['main_metric'].iloc[0]} ×100")
        if logx:
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
    shared_legend(fig, axes)
    return fig


def bars_figure(best: pd.DataFrame, style: Style) -> Figure:
    """Mean per variant with the seeds' std as error bars, per task."""
    tasks = leaderboard.sort_tasks(best["task"])
    fig, axes = grid(len(tasks))
    for ax, task in zip(axes, tasks, strict=True):
        d = best[best["task"] == task]
        mean, std = d["mean_x100"].to_numpy(float), d["std_x100"].fillna(0).to_numpy(float)
        pos = np.arange(len(d))
        ax.bar(pos, mean, yerr=std, capsize=4, color=[style.colors[v] for v in d["variant"]])
        for p, m, s, n in zip(pos, mean, std, d["seeds"], strict=True):
            ax.annotate(f"{m:.1f}\nn={n}", (p, m + s), ha="center", va="bottom", fontsize=7)
        lo, hi = float(np.min(mean - std)), float(np.max(mean + std))
        pad = max(1.0, 0.25 * (hi - lo))
        ax.set_ylim(lo - pad, hi + 1.6 * pad)
        ticks = [
            style.label(v, m) + (f"\n{f} failed" if f else "")
            for v, m, f in zip(d["variant"], d["model"], d["failed"], strict=True)
        ]
        ax.set_xticks(pos, ticks, fontsize=8)
        ax.set(title=task, ylabel=f"{d['main_metric'].iloc[0]} ×100")
        ax.grid(axis="y", alpha=0.3)
    return fig


def read_curve(path: Path, metric: str) -> pd.DataFrame | None:
    """(step, metric) of one history.jsonl, or None when the file or the metric is missing."""
    if not path.is_file():
        return None
    hist = pd.DataFrame([json.loads(line) for line in path.read_text().splitlines() if line.strip()])
    if metric not in hist.columns or "step" not in hist.columns:
        return None
    return hist[["step", metric]].dropna()


def seed_curves(runs: pd.DataFrame, metric: str, source: Path) -> tuple[list[pd.Series], list[str]]:
    """The main-metric curve (x100, indexed by step) of each run, and a line per run without one."""
    curves, missing = [], []
    for _, run in runs.iterrows():
        path = recorded_path(run["run_dir"], source) / "history.jsonl"
        curve = read_curve(path, metric)
        if curve is None:
            missing.append(f"{run['run_name']}: no {metric!r} curve in {path}")
        else:
            curves.append(curve.set_index("step")[metric] * 100)
    return curves, missing


def curves_figure(
    runs: pd.DataFrame, best: pd.DataFrame, source: Path, style: Style
) -> tuple[Figure | None, list[str]]:
    """Main metric vs step for each variant's best configuration, mean ± std over seeds; lists the gaps."""
    done = dict(list(runs[runs["status"] == "completed"].groupby(leaderboard.LABELLED)))
    missing: list[str] = []
    tasks = leaderboard.sort_tasks(best["task"])
    fig, axes = grid(len(tasks))
    drawn = False
    for ax, task in zip(axes, tasks, strict=True):
        configs = best[best["task"] == task]
        for _, cfg in configs.iterrows():
            key = (cfg["task"], cfg["variant"], cfg["model"], cfg["hparams"])
            curves, lost = seed_curves(done[key], cfg["main_metric"], source)
            missing += lost
            if not curves:
                continue
            both = pd.concat(curves, axis=1)
            mean, std = both.mean(axis=1), both.std(axis=1).fillna(0)
            color = style.colors[cfg["variant"]]
            ax.plot(
                mean.index, mean, color=color, marker=".", label=style.label(cfg["variant"], cfg["model"])
            )
            ax.fill_between(mean.index, mean - std, mean + std, color=color, alpha=0.15)
            drawn = True
        ax.set(title=task, xlabel="step", ylabel=f"{configs['main_metric'].iloc[0]} ×100")
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


def plot_sections(runs: pd.DataFrame, table: pd.DataFrame, source: Path) -> list[str]:
    configs = scored_configs(table)
    if configs.empty:
        return [
            note(
                "No completed runs: nothing to plot (failed, diverged and oom runs are counted in the table)."
            )
        ]
    style, best = Style(configs), best_configs(table)
    out = []
    for column, label, logx in COST_AXES:
        out.append(f"<h2>Score vs {label}</h2>")
        fig = cost_figure(configs, column, label, logx, style)
        out.append(png(fig, f"score vs {label}") if fig else note(f"No run recorded {column}: plot skipped."))
    out += [
        "<h2>Score per variant (best configuration, error bars: std over seeds)</h2>",
        png(bars_figure(best, style), "score per variant"),
        "<h2>Learning curves (mean ± std over seeds)</h2>",
    ]
    fig, missing = curves_figure(runs, best, source, style)
    out.append(png(fig, "learning curves") if fig else note("No learning curve to draw."))
    if missing:
        items = "".join(f"<li>{html.escape(m)}</li>" for m in missing)
        out.append(f'<p class="note">Skipped (no history):</p><ul class="note">{items}</ul>')
    return out


def build_report(source: str | Path) -> str:
    """The whole page as a string; ``source``: a results or sweep folder, or a runs CSV."""
    source = Path(source)
    runs = leaderboard.load(source)
    table = leaderboard.aggregate(runs)
    done = int((runs["status"] == "completed").sum())
    summary = (
        f"{plural(len(runs), 'run')} ({done:,} completed, {len(runs) - done:,} failed, diverged or oom) on "
        f"{', '.join(leaderboard.sort_tasks(runs['task']))}; from {source}, "
        f"{datetime.now():%Y-%m-%d %H:%M}. Score = main metric at the best epoch, as the papers "
        f"report; points and bars are means over seeds, ×100."
    )
    body = [
        f"<h1>peft-bench report</h1><p>{html.escape(summary)}</p>",
        *plot_sections(runs, table, source),
        "<h2>Leaderboard</h2>",
        f'<div class="wide">{leaderboard.render(table, "html")}</div>',
    ]
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>peft-bench report</title>'
        f"<style>{STYLE}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="peft-bench-report", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--results",
        default=default_results(),
        help=leaderboard.RESULTS_HELP,
    )
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
