"""The report's static plots, as matplotlib figures and as PNG embedded in HTML (``png``), one colour per
variant (the interactive plots' colours, ``bench.analysis.explorer``) and one marker per model
(``Style``): the memory of a training step by what holds it, beside each variant's score, and the
critical-difference diagram of the average ranks."""

from __future__ import annotations

import base64
import html
import io
import math
from typing import Any

import numpy as np
import pandas as pd
import scikit_posthocs
from matplotlib.figure import Figure

from bench.analysis.runs_table import MEMORY_COLUMNS
from bench.analysis.selection import sort_tasks
from bench.analysis.significance import ALPHA, Friedman

MARKERS = "osD^vP*X"
MEMORY_SHADES = ("0.55", "C0", "C2", "C1", "C3")  # frozen, trainable, gradients, optimizer, activations


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


def cd_figure(test: Friedman, style: Style) -> Figure:
    """The Nemenyi critical-difference diagram of the variants' average ranks."""
    fig = Figure(figsize=(8, 1.2 + 0.3 * len(test.avg_rank)), layout="constrained")
    colors = {v: style.colors[v] for v in test.avg_rank.index}
    scikit_posthocs.critical_difference_diagram(
        test.avg_rank, test.nemenyi, ax=fig.subplots(), alpha=ALPHA, color_palette=colors
    )
    return fig


def png(fig: Figure, alt: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
