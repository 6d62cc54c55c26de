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

MISSING = "(not recorded)"


def in_order(value: str) -> tuple[int, float, str]:
    """A sort key that puts numbers in numeric order (4 before 16), then text in text order."""
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)


def differences(df: pd.DataFrame, task: str | None = None) -> pd.DataFrame:
    """Per (task, variant, model) with more than one row: each row's label and its value of every
    setting in which the rows differ (long format: task, variant, model, hparams, setting, value), the
    rows in the order of their values (numbers numerically)."""
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
        settings = differing(list(views.values()))
        values = {key: [fmt_value(v[k]) if k in v else MISSING for k in settings] for key, v in views.items()}
        for k, setting in enumerate(settings):
            for key in sorted(first, key=lambda key: [in_order(v) for v in values[key]]):
                out.append((t, variant, model, runs["hp_label"].iloc[first[key]], setting, values[key][k]))
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
