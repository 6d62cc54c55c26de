"""The leaderboard rendered: a table with the notes that say what its columns mean, as Markdown, an HTML
fragment or CSV (``render``), a table without notes (``render_plain``), the selected lrs as the YAML that
``experiment=demo`` reads (``selected_lrs_yaml``), and a notice as an HTML paragraph (``note``, for the
report); display cells have 2 decimals for metrics, a hyperparameter exact, '-' where there is no value;
a CSV has every float in full."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pandas as pd

from bench.analysis.configurations import OFF_BUDGET
from bench.analysis.runs_table import exact
from bench.analysis.selection import AVG_TASK, selected_lrs, sort_tasks
from bench.analysis.significance import ALPHA
from bench.plural import plural

FORMATS = ("md", "csv", "html")
EXACT_COLUMNS = ("lr",)  # hyperparameters: shown as recorded in the tables, never rounded


def notes(table: pd.DataFrame) -> list[str]:
    """What the columns mean, stated with the table (each line only when its columns are there)."""
    tuned_view = "tied" in table.columns
    lines = [
        "mean_x100: the test score (main metric ×100) at the epoch selected on the dev set, mean over "
        "seeds; std: sample std over seeds; every *_x100 column is a metric ×100.",
    ]
    if tuned_view:
        lines += [
            "Tuned: per (task, variant, model, budget) the configuration (lr or any swept setting) with the "
            "best mean dev score is selected and its test score reported; nothing is selected on test. "
            "hparams: the selected configuration; grid: the candidates in this table (1: no tuning "
            "here); tuning_time_s: the train time of every run of every candidate (`--sensitivity` lists "
            "them; `--configs` shows every configuration).",
            "ci95: half-width of the 95% confidence interval of the mean; n: seeds. tied: cannot be told "
            f"apart from the task's best (p >= {ALPHA}) by the test its tie_test names: the paired bootstrap "
            "over test examples and seeds with Holm's correction over the rows compared, where the runs kept "
            "test predictions (then ci95 is half the bootstrap's percentile interval, ci_low..ci_high), else "
            "Welch's t-test over seeds (ci95: Student's t over seeds; - : fewer than 2 seeds on a side). "
            "rank: 1 = best test mean within the task.",
            "edge: the selected lr is the lowest (low) or highest (high) of its grid; widen the grid there.",
        ]
        if "grid_seeds" in table.columns:
            lines.append(
                "grid_seeds: the seeds each candidate was run on, lowest lr first (a staged grid, "
                "`peft-bench tune`: every point on few seeds, the best on more); the selection is the best "
                "mean dev score among the candidates run on the most seeds, and tuning_time_s counts the "
                "runs made."
            )
    else:
        lines.append(
            "Every configuration, unselected: a row is the runs whose resolved config is the same but for "
            "the seed (their config_key); its label shows lr, the variant's key hparams and every setting "
            "in which the rows of its (task, variant, model) differ (`--diff` lists them)."
        )
    lines.append(
        "dev_x100: the dev score that selects; chance_x100: the test score of always predicting the train "
        "set's majority class (a regression's constant: 0). A row at chance learned nothing."
    )
    if "select_on" in table.columns:
        lines.append(
            "select_on test: the papers' convention (best epoch picked on the reported split itself), kept "
            "for paper reproductions only: those scores are optimistic, not held out."
        )
    lines += [
        "One run per config hash (the latest completed rerun counts); `failed` counts failed, diverged and "
        "oom runs, which are not averaged.",
        *budget_notes(table),
    ]
    avg = table[table["task"] == AVG_TASK]
    if len(avg):
        lines.append(
            "avg: per variant, the mean over the tasks listed in `tasks` of its selected test mean, ranked "
            "by avg_rank (the mean over those tasks of its rank among the averaged variants); only the "
            "variants that ran every task are averaged."
        )
        if mixed := table.attrs.get("mixed_metrics"):
            lines.append(mixed_note(mixed))
    if table.attrs.get("incomplete"):
        lines.append(f"No average for {', '.join(table.attrs['incomplete'])}: missing some task.")
    if "published" in table.columns:
        lines.append(
            "published: the papers' numbers (percent; results/reference/README.md cites them); an avg "
            "row gets one only when it covers the same tasks as the paper's average; source = reference "
            "marks published rows with no run of ours."
        )
    return lines


def mixed_note(metrics: str) -> str:
    """What an average over tasks of different metrics (``metrics``: "accuracy+pearson") is, and is not."""
    return (
        f"avg mixes metrics ({metrics}): its mean averages different scales, as the papers' GLUE averages "
        "do, so the avg rows rank by avg_rank, not by that mean."
    )


def budget_notes(table: pd.DataFrame) -> list[str]:
    """One line per task whose rows' budgets differ."""
    if "budget" not in table.columns:
        return []
    ours = table[table["budget"].notna() & table["task"].ne(AVG_TASK)]
    lines = []
    for task in sort_tasks(ours["task"]):
        budgets = ours.loc[ours["task"] == task, "budget"].str.removeprefix(OFF_BUDGET)
        if budgets.nunique() > 1:
            counts = budgets.value_counts()
            each = "; ".join(f"{b} ({plural(n, 'row')})" for b, n in counts.items())
            lines.append(
                f"budgets differ on {task}: {each} — not a like-for-like comparison "
                f"(`{OFF_BUDGET.strip()}` marks the rows off the task's most common budget)."
            )
    return lines


FORMAT_BY_COLUMN = {
    "trainable_params": "{:,.0f}",
    "pct_trainable": "{:.3g}",
    "peak_memory_mb": "{:,.0f}",
    "model_mb": "{:,.1f}",
    "train_time_s": "{:,.1f}",
    "train_samples_per_s": "{:,.1f}",
    "adapter_mb": "{:.3g}",
    "published": "{:.2f}",
    "tuning_time_s": "{:,.0f}",
    "time_total_s": "{:,.0f}",
    "p_vs_best": "{:.3f}",
}


def cells(table: pd.DataFrame) -> pd.DataFrame:
    """The table as display strings: 2 decimals for metrics, an lr exact, '-' where there is no value."""

    def fmt(col: str, v: Any) -> str:
        if v is None or v is pd.NA or (isinstance(v, float) and pd.isna(v)):
            return "-"
        if isinstance(v, bool):
            return "yes" if v else "no"
        if col in EXACT_COLUMNS:
            return exact(v)
        if isinstance(v, (int, float)):
            return FORMAT_BY_COLUMN.get(col, "{:.2f}" if isinstance(v, float) else "{}").format(v)
        return str(v)

    return pd.DataFrame({c: [fmt(c, v) for v in table[c].astype(object)] for c in table.columns})


def render(table: pd.DataFrame, fmt: str) -> str:
    """The table as Markdown or an HTML fragment with its notes, or as CSV (``csv_text``)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "csv":
        return csv_text(table)
    if fmt == "html":
        items = "".join(f"<li>{html.escape(line)}</li>" for line in notes(table))
        page = f'<ul class="notes">{items}</ul>\n' + cells(table).to_html(index=False, classes="leaderboard")
        return page.encode("ascii", "xmlcharrefreplace").decode()  # no charset needed: a bare fragment
    return "".join(f"> {line}\n" for line in notes(table)) + "\n" + markdown_table(cells(table))


def csv_text(table: pd.DataFrame) -> str:
    """The table as CSV with exact numbers: every float in full (its shortest form that reads back the
    same, as ``repr``: 8e-05, 81.53333333333333), never rounded."""
    return table.to_csv(index=False)


def selected_lrs_yaml(table: pd.DataFrame, source: str | Path) -> str:
    """``selected_lrs`` as the YAML file that ``${peft_bench.selected_lr:...}`` reads, saying its source."""
    lines = [
        f"# The lr selected on dev per task and variant by the tuned leaderboard of {source}.",
        f"# Made by: python -m bench leaderboard --results {source} --selected-lrs --out <this file>",
    ]
    for task, by_variant in selected_lrs(table).items():
        lines.append(f"{task}:")
        lines += [f"  {variant}: {exact(lr)}" for variant, lr in by_variant.items()]
    return "\n".join(lines) + "\n"


def render_plain(table: pd.DataFrame, fmt: str) -> str:
    """A table without notes as Markdown or an HTML table."""
    if fmt == "html":
        return cells(table).to_html(index=False).encode("ascii", "xmlcharrefreplace").decode()
    return markdown_table(cells(table))


def markdown_table(text: pd.DataFrame) -> str:
    """A frame of strings as a Markdown table ('|' in a cell escaped)."""
    head = "| " + " | ".join(text.columns) + " |\n|" + "|".join("---" for _ in text.columns) + "|\n"
    return head + "".join(
        "| " + " | ".join(v.replace("|", "\\|") for v in row) + " |\n" for row in text.values
    )


def note(text: str) -> str:
    """A notice as an HTML paragraph (class ``note``)."""
    return f'<p class="note">{html.escape(text)}</p>'
