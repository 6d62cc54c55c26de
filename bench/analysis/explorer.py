"""The report's interactive part, drawn in the browser by plotly.js (``bench.analysis.plotly_bundle``):
task and variant filters (they filter the plots and the tables), a Pareto plot of any two of the score
and the costs with 95% CI whiskers where a CI exists (the score's from the leaderboard; a cost measured
per run, Student's t over seeds), the dev score against lr as a small multiple per task and variant with
the selected lr ringed and labelled, and the learning curves of the selected configurations. Every point
says on hover its configuration, seeds, CI and run count; the tables sort on a click of their header and
export as CSV. This module gathers the data (``explorer_data``) and writes the section's HTML with the
data as JSON and the script (``explorer.js``) inline (``explorer_section``)."""

from __future__ import annotations

import html
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from bench.analysis.render import note
from bench.analysis.runs_table import LABELLED, exact
from bench.analysis.selection import ci_half_width, sort_tasks
from bench.inputs.metrics import DEV, TEST
from bench.results.run_folder import RunFolder, recorded_path

SCORE = "mean_x100"
AXES = (  # column, label, log scale, higher is better
    (SCORE, "score", False, True),
    ("trainable_params", "trainable parameters", True, False),
    ("peak_memory_mb", "peak memory (MB)", False, False),
    ("train_time_s", "train time (s)", False, False),
    ("tuning_time_s", "tuning time (s)", False, False),
    ("adapter_mb", "adapter size (MB)", True, False),
    ("inference_ms", "inference latency (ms)", False, False),
)
PER_RUN = ("peak_memory_mb", "train_time_s")  # costs measured by each run: a CI over its seeds
DEFAULT_AXES = ("trainable_params", SCORE)
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")  # fmt: skip  # matplotlib's tab10: the colours of the static figures
INFERENCE_CSV = "speed_inference.csv"  # `bench speed` beside the runs: one forward, merged where it merges


def number(v: Any) -> float | None:
    """A finite float, or None (JSON null)."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def inference_ms(source: Path) -> dict[str, float]:
    """Per variant, the inference latency `bench speed` measured (ms; merged where the adapter merges),
    from ``speed_inference.csv`` in a results folder; empty when there is none."""
    path = source / INFERENCE_CSV
    if not path.is_file():
        return {}
    table = pd.read_csv(path)
    merged = table["merged_ms"] if "merged_ms" in table else pd.Series(math.nan, index=table.index)
    ms = pd.to_numeric(merged, errors="coerce").fillna(pd.to_numeric(table["unmerged_ms"], errors="coerce"))
    return {v: float(m) for v, m in zip(table["variant"], ms, strict=True) if math.isfinite(m)}


def score_ci(row: pd.Series) -> list[float] | None:
    """The score's 95% CI: the bootstrap's percentile interval where there is one, else mean ± ci95."""
    low, high = number(row.get("ci_low_x100")), number(row.get("ci_high_x100"))
    if low is not None and high is not None:
        return [low, high]
    half, mean = number(row.get("ci95_x100")), number(row[SCORE])
    return None if half is None or mean is None else [mean - half, mean + half]


def point(row: pd.Series, runs: pd.DataFrame, latency: dict[str, float]) -> dict[str, Any]:
    """One selected configuration as a plotted point: its values on every axis, their CIs, its runs."""
    values = {column: number(row.get(column)) for column, *_ in AXES}
    values["inference_ms"] = latency.get(row["variant"])
    ci: dict[str, list[float]] = {}
    if (interval := score_ci(row)) is not None:
        ci[SCORE] = interval
    for column in PER_RUN:
        measured = [v for v in map(number, runs.get(column, [])) if v is not None]
        if len(measured) > 1 and values[column] is not None:
            half = ci_half_width(measured)
            ci[column] = [values[column] - half, values[column] + half]
    return {
        "task": row["task"],
        "variant": row["variant"],
        "model": row["model"],
        "config": row["hparams"],
        "values": values,
        "ci": ci,
        "tied": row.get("tied") is True,
        "seeds": sorted(int(s) for s in runs["seed"].dropna()) if "seed" in runs else [],
        "runs": len(runs),
        "failed": int(number(row.get("failed")) or 0),
        "grid": int(number(row.get("grid")) or 1),
        "grid_runs": int(number(row.get("grid_runs")) or len(runs)),
    }


def lr_lines(sens: pd.DataFrame) -> list[dict[str, Any]]:
    """Per task, variant and model: dev and test score against lr, and the selected lr."""
    lines = []
    for (task, variant, model), g in sens.dropna(subset=["dev_x100", "lr"]).groupby(
        ["task", "variant", "model"], sort=False
    ):
        g = g.sort_values("lr")
        picked = g.loc[g["selected"], "lr"]
        lines.append({
            "task": task, "variant": variant, "model": model, "config": list(g["hparams"]),
            "lr": [float(x) for x in g["lr"]], "dev": [number(x) for x in g["dev_x100"]],
            "test": [number(x) for x in g[SCORE]], "seeds": [int(x) for x in g["seeds"]],
            "selected": float(picked.iloc[0]) if len(picked) else None,
            "selected_text": exact(picked.iloc[0]) if len(picked) else None,
        })  # fmt: skip
    return lines


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
        hist = pd.DataFrame(folder.history()) if folder.history_path.is_file() else None
        key = None if hist is None or "step" not in hist else curve_key(hist.columns, run["main_metric"])
        if key is None:
            missing.append(f"{run['run_name']}: no {run['main_metric']!r} curve in {folder.history_path}")
            continue
        curves.append(hist[["step", key]].dropna().set_index("step")[key] * 100)
        keys.add(key)
    return curves, keys, missing


def curve(row: pd.Series, runs: pd.DataFrame, source: Path) -> tuple[dict[str, Any] | None, list[str]]:
    """A selected configuration's learning curve, mean and std over seeds, and the runs without one."""
    curves, keys, missing = seed_curves(runs, source)
    if not curves:
        return None, missing
    both = pd.concat(curves, axis=1).sort_index()
    mean, std = both.mean(axis=1), both.std(axis=1).fillna(0)
    line = {"task": row["task"], "variant": row["variant"], "model": row["model"], "key": sorted(keys)}
    return line | {"step": [float(s) for s in mean.index], "mean": list(map(number, mean)),
                   "std": list(map(number, std))}, missing  # fmt: skip


def explorer_data(runs: pd.DataFrame, rows: pd.DataFrame, sens: pd.DataFrame, source: Path) -> dict[str, Any]:
    """What the page draws: points, lr lines, curves, the axes with a value, colours, chance and metric
    per task, and the runs without a learning curve (``missing``)."""
    done = dict(list(runs[runs["status"] == "completed"].groupby(LABELLED)))
    latency = inference_ms(source) if source.is_dir() else {}
    points, curves, missing = [], [], []
    for _, row in rows.iterrows():
        mine = done.get((row["task"], row["variant"], row["model"], row["hparams"]), runs.iloc[:0])
        points.append(point(row, mine, latency))
        line, lost = curve(row, mine, source)
        curves += [line] if line else []
        missing += lost
    axes = [
        {"key": key, "label": label, "log": log, "high": high}
        for key, label, log, high in AXES
        if any((v := p["values"][key]) is not None and (v > 0 or not log) for p in points)
    ]
    variants = sorted(rows["variant"].unique())
    tasks = sort_tasks(rows["task"])
    by_task = rows.groupby("task")
    return {
        "tasks": tasks,
        "variants": variants,
        "colors": {v: PALETTE[i % len(PALETTE)] for i, v in enumerate(variants)},
        "metric": {t: str(by_task.get_group(t)["main_metric"].iloc[0]) for t in tasks},
        "chance": {t: number(by_task.get_group(t).get("chance_x100", pd.Series()).median()) for t in tasks},
        "axes": axes,
        "default": [a for a in DEFAULT_AXES if a in {x["key"] for x in axes}],
        "points": points,
        "sensitivity": lr_lines(sens),
        "curves": curves,
        "missing": missing,
    }


def options(axes: list[dict[str, Any]], chosen: str) -> str:
    """The axes as a select's options, ``chosen`` selected."""
    return "".join(
        f'<option value="{a["key"]}"{" selected" * (a["key"] == chosen)}>{html.escape(a["label"])}</option>'
        for a in axes
    )


def filters(data: dict[str, Any]) -> str:
    """The task and variant checkboxes (a variant's label shows its colour: the plots' legend)."""
    tasks = "".join(
        f'<label><input type="checkbox" name="task" value="{html.escape(t)}" checked>{html.escape(t)}</label>'
        for t in data["tasks"]
    )
    variants = "".join(
        f'<label><input type="checkbox" name="variant" value="{html.escape(v)}" checked>'
        f'<span class="swatch" style="background:{data["colors"][v]}"></span>{html.escape(v)}</label>'
        for v in data["variants"]
    )
    return (
        f'<form id="filters"><fieldset><legend>Tasks</legend>{tasks}</fieldset>'
        f"<fieldset><legend>Variants (colour in the plots)</legend>{variants}</fieldset></form>"
    )


def explorer_section(data: dict[str, Any], plotly_src: str) -> str:
    """The section: filters, the Pareto plot with its axis choice, the lr small multiples, the curves,
    then the data as JSON, plotly.js by its relative path and the page's script."""
    x, y = (data["default"] + [a["key"] for a in data["axes"]] * 2)[:2]
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    script = resources.files("bench.analysis").joinpath("explorer.js").read_text(encoding="utf-8")
    missing = "".join(f"<li>{html.escape(m)}</li>" for m in data["missing"])
    return "\n".join([
        '<section id="explore"><h2>Explore: filter the plots and the tables</h2>',
        filters(data),
        "<h2>Score and costs (the Pareto view)</h2>",
        f'<p class="axes">x: <select id="x-axis">{options(data["axes"], x)}</select> y: '
        f'<select id="y-axis">{options(data["axes"], y)}</select></p>',
        '<div id="pareto" class="plots"></div>',
        "<p class=\"caption\">A point per variant at its tuned configuration (hover for its configuration, "
        "seeds, CI and runs). Filled: the best and the tied with it; open: not tied. Whiskers: 95% CI (the "
        "score's from the leaderboard; peak memory and train time: Student's t over seeds). Dashed: the "
        "Pareto frontier of the points drawn. Dotted: chance.</p>",
        "<h2>Dev score vs lr (how forgiving a method is of its lr; ringed, labelled: the selected lr)</h2>",
        '<div id="sensitivity"></div>'
        if data["sensitivity"]
        else note("No dev score with an lr (rows selected on test have none): plot skipped."),
        "<h2>Learning curves of the selected configurations (dev metric, mean ± std over seeds)</h2>",
        '<div id="curves" class="plots"></div>',
        f'<p class="note">Skipped (no history):</p><ul class="note">{missing}</ul>' if missing else "",
        "</section>",
        f'<script type="application/json" id="explorer-data">{payload}</script>',
        f'<script src="{html.escape(plotly_src)}"></script>',
        f"<script>{script}</script>",
    ])  # fmt: skip
