"""The leaderboard in a terminal, drawn with rich so that it fits the terminal's width: the tuned view
(``draw_tuned``: the verdict first, then one aligned table per task with its test score ± CI and tie
marker, then the average over the tasks) and ``--sensitivity`` as a variant x lr grid per task
(``draw_sensitivity``). ``capture`` draws either into a string at a given width."""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from bench.analysis.render import mixed_note, notes
from bench.analysis.runs_table import exact
from bench.analysis.selection import AVG_TASK, sort_tasks
from bench.analysis.significance import friedman, overall_verdict, task_verdicts
from bench.analysis.verdict import NO_OVERALL, TASK_HEAD, headline, overall_text, task_cells, tests_text

TERMINAL = "term"  # the --format of these views
TEST_SCORE = "test_x100 ± CI"  # the test score (×100) and half its 95% CI
BEST, TIED, UNTESTED = "best", "≈", "?"  # the tie markers
GRID_KEY = "lr: the row's lowest; ×k: k times it. * selected on dev; ° run on one seed."
HINT = "--notes: what the columns mean; --full or --format md: every column, as Markdown."


def capture(draw: Callable[[Console], None], width: int, color: bool = False) -> str:
    """What ``draw`` prints on a console ``width`` columns wide (with ANSI styles when ``color``)."""
    console = Console(
        file=io.StringIO(), width=width, force_terminal=color, no_color=not color, highlight=False
    )
    draw(console)
    return console.file.getvalue().rstrip("\n")


def number(v: Any, fmt: str = "{:.2f}") -> str:
    """A cell: ``fmt`` of a number, '-' where there is none."""
    return "-" if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)


def short_count(n: Any) -> str:
    """A parameter count in 4 or 5 characters: 642, 8.3k, 74.4k, 2.65M, 22.7M."""
    if n is None or pd.isna(n):
        return "-"
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{n / scale:.3g}{suffix}"
    return f"{int(n)}"


def test_score(row: pd.Series) -> str:
    """ "81.53 ± 1.20", "81.53" with no CI, '-' with no score."""
    if pd.isna(row["mean_x100"]):
        return "-"
    ci = row.get("ci95_x100")
    return f"{row['mean_x100']:.2f}" + ("" if ci is None or pd.isna(ci) else f" ± {ci:.2f}")


def tie_marker(row: pd.Series, best: Any) -> str:
    """BEST for the task's best row, TIED for a row tied with it, UNTESTED for one with too few seeds."""
    if row.name == best:
        return BEST
    if pd.isna(row["mean_x100"]):
        return ""
    tied = row.get("tied")
    return UNTESTED if tied is None or pd.isna(tied) else TIED if bool(tied) else ""


def draw_tuned(table: pd.DataFrame, console: Console, with_notes: bool = False) -> None:
    """A tuned table (``tuned_board(full=True)``): the verdict over the tasks, then per task its verdict
    and its table, then the average; the notes when ``with_notes``, else a line saying where they are."""
    verdicts = task_verdicts(table)
    test = friedman(table)
    overall = overall_verdict(table, test)
    console.print(Text("Verdict", style="bold underline"))
    if len(verdicts) > 1:
        console.print(Text(headline(table, test), style="bold"))
        console.print(overall_text(overall) + "." if overall else NO_OVERALL)
    by_task = {v["task"]: v for v in verdicts}
    for task in sort_tasks(table["task"][table["task"] != AVG_TASK]):
        rows = table[table["task"] == task]
        metric = rows["main_metric"].dropna()
        console.print()
        console.print(Text(task + (f" ({metric.iloc[0]} ×100)" if len(metric) else ""), style="bold"))
        if task in by_task:
            for head, cell in zip(TASK_HEAD, task_cells(by_task[task])[1:], strict=True):
                if cell:
                    console.print(Text(f"{head}: {cell}"))
        console.print(task_table(rows))
    avg = table[table["task"] == AVG_TASK]
    if len(avg):
        console.print()
        console.print(avg_table(avg))
        if mixed := table.attrs.get("mixed_metrics"):
            console.print(Text(mixed_note(mixed)))
    console.print()
    if verdicts:
        console.print(Text(tests_text(verdicts) + "; " + UNTESTED + ": fewer than 2 seeds.", style="dim"))
    if with_notes:
        for line in notes(table):
            console.print(Text("- " + line))
    else:
        console.print(Text(HINT, style="dim"))


def task_table(rows: pd.DataFrame) -> Table:
    """One task's tuned rows: rank, variant (and model when several), hparams, the test score ± CI, the
    tie marker, n, trainable parameters (count and share), the dev score, and edge, budget and
    published when some row has one."""
    best = rows["mean_x100"].idxmax() if rows["mean_x100"].notna().any() else None
    columns: dict[str, Callable[[pd.Series], str]] = {"#": lambda r: number(r["rank"], "{}")}
    columns["variant"] = lambda r: r["variant"]
    if rows["model"].nunique() > 1:
        columns["model"] = lambda r: r["model"]
    columns |= {
        "hparams": lambda r: r["hparams"],
        TEST_SCORE: test_score,
        "tied": lambda r: tie_marker(r, best),
        "n": lambda r: number(r["n"], "{}"),
        "params": lambda r: short_count(r["trainable_params"]),
        "%": lambda r: number(r["pct_trainable"], "{:.3g}"),
        "dev_x100": lambda r: number(r["dev_x100"]),
    }
    for extra in ("edge", "budget", "published"):
        if extra in rows and rows[extra].replace("", None).notna().any():
            columns[extra] = lambda r, c=extra: number(r[c]) if c == "published" else str(r[c] or "")
    out = Table(pad_edge=False, box=None)
    for name in columns:
        text = name in ("variant", "model", "hparams")
        out.add_column(name, justify="left" if text else "right", no_wrap=not text, overflow="fold")
    for i, r in rows.iterrows():
        style = "bold" if i == best else "dim" if tie_marker(r, best) == "" else None
        out.add_row(*(f(r) for f in columns.values()), style=style)
    return out


def avg_table(avg: pd.DataFrame) -> Table:
    """The average over the tasks: rank by average rank, the mean test score, trainable parameters."""
    tasks = avg["tasks"].dropna()
    title = "avg" + (f" over {tasks.iloc[0].replace(',', ', ')}" if len(tasks) else "")
    out = Table(title=title, title_justify="left", title_style="bold", pad_edge=False, box=None)
    for name in ("#", "variant", "avg_rank", "mean test_x100", "params", "%"):
        out.add_column(name, justify="left" if name == "variant" else "right")
    for _, r in avg.iterrows():
        out.add_row(
            number(r["rank"], "{}"),
            r["variant"],
            number(r.get("avg_rank")),
            number(r["mean_x100"]),
            short_count(r["trainable_params"]),
            number(r["pct_trainable"], "{:.3g}"),
        )
    return out


def grid_rows(sens: pd.DataFrame) -> pd.DataFrame:
    """A task's sensitivity rows with ``row`` (the variant; with its model when several, and the rest of
    its label when that differs between its configurations), ``base`` (the row's lowest lr) and ``step``
    (the lr as a multiple of it: "×1", "×4", ...)."""
    rest = sens["hparams"].str.replace(r"(^| )lr=\S+", "", regex=True).str.strip()
    row = sens["variant"]
    if sens["model"].nunique() > 1:
        row = row + "/" + sens["model"]
    varies = rest.groupby(row).transform("nunique") > 1
    row = row.where(~varies, row + " " + rest)
    base = sens["lr"].groupby(row).transform("min")
    ratio = sens["lr"] / base
    return sens.assign(row=row, base=base, ratio=ratio, step=ratio.map(lambda x: number(x, "×{:.3g}")))


def sensitivity_table(task: str, sens: pd.DataFrame) -> Table:
    """One task's dev and test score (×100) per variant (rows) and lr (columns: a multiple of the row's
    lowest lr); ``*`` marks the selected lr, ``°`` a point run on one seed."""
    g = grid_rows(sens)
    steps = g.drop_duplicates("step").sort_values("ratio", na_position="last")["step"].tolist()
    out = Table(title=f"{task}: dev / test ×100 by lr", title_justify="left", title_style="bold", box=None)
    out.add_column("variant", overflow="fold")
    out.add_column("lr", justify="right")
    out.add_column("", style="dim")
    for step in steps:
        out.add_column(step, justify="right")
    for row, r in g.groupby("row", sort=False):
        cells = {}
        for _, c in r.iterrows():
            mark = ("*" if c["selected"] else "") + ("°" if c.get("one_seed") is True else "")
            pad = " " * len(mark)
            cells[c["step"]] = f"{number(c['dev_x100'])}{mark}\n{number(c['mean_x100'])}{pad}"
        out.add_row(row, exact(r["base"].iloc[0]), "dev\ntest", *(cells.get(s, "") for s in steps))
    return out


def draw_sensitivity(sens: pd.DataFrame, console: Console) -> None:
    """``bench.analysis.selection.sensitivity`` as one grid per task."""
    for task in sort_tasks(sens["task"]):
        console.print(sensitivity_table(task, sens[sens["task"] == task]))
        console.print()
    console.print(Text(GRID_KEY, style="dim"))
