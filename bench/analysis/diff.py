"""``--diff``: the settings in which the rows of each (task, variant, model) differ, so that a reader sees
why one method has several rows (an lr grid, a rank sweep, a changed default); ``differences`` lists them
in long format and ``render_differences`` shows them as Markdown (a table per (task, variant, model)),
CSV or HTML."""

from __future__ import annotations

import pandas as pd

from bench.analysis.render import markdown_table
from bench.analysis.runs_table import COMPARED, differing, first_runs, fmt_value, prepare, row_settings
from bench.analysis.selection import by_task
from bench.plural import plural


def differences(df: pd.DataFrame, task: str | None = None) -> pd.DataFrame:
    """Per (task, variant, model) with more than one row: each row's label and its value of every
    setting in which the rows differ (long format: task, variant, model, hparams, setting, value)."""
    runs = prepare(df)
    if task is not None:
        runs = runs[runs["task"] == task]
    out = []
    for (t, variant, model), g in runs.groupby(COMPARED, sort=False):
        positions = runs.index.get_indexer(g.index)
        first = first_runs(runs, positions)
        if len(first) < 2:
            continue
        views = {key: row_settings(runs.iloc[i]) for key, i in first.items()}
        for k in differing(list(views.values())):
            for key, i in first.items():
                value = fmt_value(views[key][k]) if k in views[key] else "(not recorded)"
                out.append((t, variant, model, runs["hp_label"].iloc[i], k, value))
    columns = ["task", "variant", "model", "hparams", "setting", "value"]
    table = pd.DataFrame(out, columns=columns)
    return by_task(table, ["variant", "model", "setting"])


def render_differences(diff: pd.DataFrame, fmt: str) -> str:
    """``differences`` as CSV, an HTML table, or Markdown: per (task, variant, model), a table of its
    rows (one per label) by the settings they differ in."""
    if fmt == "csv":
        return diff.to_csv(index=False)
    if fmt == "html":
        return diff.to_html(index=False, classes="differences").encode("ascii", "xmlcharrefreplace").decode()
    if diff.empty:
        return "No (task, variant, model) has rows that differ in their settings.\n"
    parts = []
    for (t, variant, model), g in diff.groupby(COMPARED, sort=False):
        wide = g.pivot(index="hparams", columns="setting", values="value")
        settings = list(dict.fromkeys(g["setting"]))
        labels = list(dict.fromkeys(g["hparams"]))
        text = wide.loc[labels, settings].reset_index()
        title = f"{t} / {variant} / {model}: {len(labels)} rows differ in {plural(len(settings), 'setting')}"
        parts.append(f"## {title}\n\n{markdown_table(text)}")
    return "\n".join(parts)
