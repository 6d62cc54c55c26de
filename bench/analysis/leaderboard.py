"""The leaderboard: the tuned comparison by default, every configuration on request, as Markdown, CSV or HTML.

The runs come from ``bench.analysis.runs_table`` (a runs CSV, a results folder or a sweep folder). A
configuration
is the runs whose resolved config is the same but for the seed (their ``config_key``); ``configurations``
gives one row each: seeds, test mean / std / median (x100, as papers print them), the dev mean that
selects, the chance score, the task's other test metrics and the costs. When the budgets
(``bench.config.budget``)
of a task's rows differ, a ``budget`` column and a note say so, and ``!`` marks the rows off the task's
most common budget. The default view, ``tuned_board``, keeps per (task, variant, model, budget) the
configuration with the best mean dev score (``bench.analysis.selection``) and marks the variants tied with
each
task's best (``bench.analysis.significance``); averages cover only the variants that ran every task. Reruns
of one
config hash count once (the latest completed row); runs that failed, diverged or ran out of memory are
counted, never averaged. Tasks are in alphabetical order, the average last.

    python -m bench leaderboard --task sst2 --format md --with-reference
    python -m bench leaderboard --configs  # every configuration (each point of an lr grid)
    python -m bench leaderboard --diff     # the settings in which each (task, variant, model)'s rows differ
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from bench.analysis.runs_table import (
    COMPARED,
    COST_COLUMNS,
    differing,
    first_runs,
    fmt_value,
    load,
    load_runs,
    prepare,
    row_settings,
)  # fmt: skip
from bench.analysis.selection import AVG_TASK, averages, by_task, selected_lrs, sensitivity, sort_tasks, tuned
from bench.analysis.significance import ALPHA, mark_ties
from bench.config.budget import BUDGET, UNKNOWN, budget_label, budget_of
from bench.inputs.metrics import DEV, TEST
from bench.plural import plural
from bench.results.run_folder import default_results

FORMATS = ("md", "csv", "html")
NOT_METRICS = ("epoch", "step")
STAT_COLUMNS = ("mean_x100", "std_x100", "median_x100", "ci95_x100", "dev_x100", "chance_x100", "scores_x100")
GROUP = ["task", "variant", "model", "row_key"]  # one leaderboard row: a configuration
OFF_BUDGET = "! "  # marks the budget of a row off its task's most common budget
RESULTS_HELP = (
    "results folder (reads its runs.csv) or sweep folder (reads its run folders); "
    "default: $PEFT_BENCH_RESULTS, else results"
)


def configurations(df: pd.DataFrame, task: str | None = None) -> pd.DataFrame:
    """One row per configuration (see ``summarize``), ranked per task by its test mean; a ``budget``
    column when the budgets of some task's rows differ (see ``flag_budgets``). Not yet tidied: it keeps
    each row's per-seed test scores (``scores_x100``) for ``bench.analysis.selection``."""
    runs = prepare(df)
    if task is not None:
        tasks = sort_tasks(runs["task"].unique())
        if task not in tasks:
            raise ValueError(
                f"unknown task {task!r}; tasks in the leaderboard: {', '.join(tasks) or '(none)'}"
            )
        runs = runs[runs["task"] == task]
    table = pd.DataFrame([summarize(g) for _, g in runs.groupby(GROUP, sort=False)])
    if table.empty:
        raise ValueError("the leaderboard has no runs to aggregate")
    table["rank"] = table.groupby("task")["mean_x100"].rank(ascending=False, method="min")
    return flag_budgets(table)


def aggregate(df: pd.DataFrame, task: str | None = None) -> pd.DataFrame:
    """Every configuration (``configurations``), tidied for display (``--configs``)."""
    return tidy(configurations(df, task), CONFIG_COLUMNS)


def tuned_board(df: pd.DataFrame, task: str | None = None, full: bool = False) -> pd.DataFrame:
    """The tuned leaderboard (the default view): per task, each variant at its selected configuration
    (``bench.analysis.selection.tuned``), its ties with the best (``bench.analysis.significance.mark_ties``),
    and the
    averages over the tasks every listed variant ran; COMPACT_COLUMNS unless ``full``."""
    table = mark_ties(tuned(configurations(df, task)))
    avg, incomplete = averages(table)
    if len(avg):
        table = pd.concat([table, avg], ignore_index=True)
    table = tidy(table, TUNED_COLUMNS if full else COMPACT_COLUMNS)
    table.attrs["incomplete"] = incomplete
    return table


def summarize(runs: pd.DataFrame) -> dict[str, Any]:
    """One configuration: counts, test-score statistics (x100), its mean dev score (what selects), the
    chance score, means of the task's other test metrics and of the cost columns, and the tuning time
    it spent (``time_total_s``: the train time of all its runs)."""
    first = runs.iloc[0]
    done = runs[runs["status"] == "completed"]
    scores = done["score"] * 100
    row = {
        "task": first["task"],
        "variant": first["variant"],
        "model": first["model"],
        "hparams": first["hp_label"],
        "budget": budget_label(run_budget(first)),
        "budget_key": budget_label(run_budget(first)),  # unmarked by flag_budgets: what tuning groups by
        "select_on": first["select_on"] or TEST,  # a run recorded before dev sets selected on its test
        "seeds": len(done),
        "failed": len(runs) - len(done),
        "main_metric": first["main_metric"],
        "mean_x100": scores.mean(),
        "std_x100": scores.std(ddof=1),
        "median_x100": scores.median(),
        "dev_x100": done["dev_score"].mean() * 100,
        "chance_x100": done["chance_score"].mean() * 100,
        "scores_x100": scores.tolist(),
        "lr": first["lr"],
        "time_total_s": runs["train_time_s"].sum(),
    }
    others = pd.DataFrame([test_metrics(m) for m in done["metrics"]], index=done.index)
    for name in others.columns:
        if name != first["main_metric"] and name not in NOT_METRICS and "loss" not in name:
            row[f"{name}_x100"] = pd.to_numeric(others[name], errors="coerce").mean() * 100
    row.update({c: done[c].mean() for c in COST_COLUMNS})
    return row


def test_metrics(values: dict[str, Any]) -> dict[str, Any]:
    """A run's test metrics by their bare names (``test/f1`` -> ``f1``); dev metrics left out."""
    prefix = f"{TEST}/"
    return {k.removeprefix(prefix): v for k, v in values.items() if not k.startswith(f"{DEV}/")}


def run_budget(run: pd.Series) -> dict[str, Any]:
    """A run's budget (BUDGET's settings); a run recorded before ``settings``: what its hparams hold."""
    if run["settings"]:
        return budget_of(run["settings"])
    hp = run["hparams"]
    return {k: hp.get(old, UNKNOWN) if old and hp else UNKNOWN for k, old in BUDGET.items()}


def flag_budgets(table: pd.DataFrame) -> pd.DataFrame:
    """Keep the ``budget`` column only when the budgets of some task's rows differ; then mark the rows
    off their task's most common budget (every row when no budget is the most common of two or more)."""
    differ = table.groupby("task")["budget"].nunique() > 1
    if not differ.any():
        return table.drop(columns="budget")
    budgets = table["budget"].copy()
    for task in differ[differ].index:
        sel = table["task"] == task
        counts = table.loc[sel, "budget"].value_counts()
        common = counts.index[0] if counts.iloc[0] > 1 and (counts == counts.iloc[0]).sum() == 1 else None
        off = sel & (table["budget"] != common)
        budgets[off] = OFF_BUDGET + table.loc[off, "budget"]
    return table.assign(budget=budgets)


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


METRICS = "<metrics>"  # in a column list: the task's other test metrics (*_x100)
OPTIONAL = ("budget", "select_on", "published", "tasks", "published_source", "source")  # shown when present
CONFIG_COLUMNS = [
    "rank", "task", "variant", "model", "hparams", "budget", "select_on", "seeds", "failed", "main_metric",
    "mean_x100", "std_x100", "median_x100", "dev_x100", "chance_x100", "published", METRICS, *COST_COLUMNS,
    "time_total_s", "tasks", "published_source", "source",
]  # fmt: skip
COMPACT_COLUMNS = [
    "rank", "task", "variant", "model", "hparams", "budget", "select_on", "mean_x100", "ci95_x100", "n",
    "tied", "dev_x100", "chance_x100", "grid", "pct_trainable", "peak_memory_mb", "train_time_s",
    "tuning_time_s", "edge", "published", "tasks",
]  # fmt: skip
TUNED_COLUMNS = [
    "rank", "task", "variant", "model", "hparams", "lr", "budget", "select_on", "n", "failed", "grid",
    "grid_runs",
    "main_metric", "mean_x100", "std_x100", "ci95_x100", "median_x100", "p_vs_best", "tied", "dev_x100",
    "chance_x100", "published", METRICS, *COST_COLUMNS, "tuning_time_s", "edge", "tasks", "published_source",
    "source",
]  # fmt: skip
INTEGER_COLUMNS = ("rank", "seeds", "failed", "trainable_params", "n", "grid", "grid_runs")


def tidy(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The ``columns`` in order (METRICS expanded; an OPTIONAL one only when the table has it), integer
    columns, rows by task then rank."""
    metric_cols = sorted(c for c in table.columns if c.endswith("_x100") and c not in STAT_COLUMNS)
    cols = []
    for c in columns:
        if c == METRICS:
            cols += metric_cols
        elif c not in OPTIONAL or c in table.columns:
            cols.append(c)
    if "select_on" in cols and table["select_on"].fillna("dev").eq("dev").all():
        cols.remove("select_on")  # shown only when some row follows the papers' convention
    table = table.reindex(columns=cols)
    for col in INTEGER_COLUMNS:
        if col in table.columns:
            table[col] = pd.to_numeric(table[col]).round().astype("Int64")
    table = by_task(table, ["rank", "variant"])
    table.attrs["columns"] = list(dict.fromkeys(c for c in columns if c != METRICS))
    return table


REFERENCE_COLUMNS = ("task", "variant", "model", "metric", "score", "params_m", "source")
REPO_REFERENCE = Path(__file__).resolve().parents[1] / "reference"  # a link to results/reference


def reference_dir(results: str | Path) -> Path:
    """``<results>/reference`` when it holds published numbers, else the repository's."""
    mine = Path(results) / "reference"
    return mine if any(mine.glob("*.csv")) else REPO_REFERENCE


def load_reference(folder: str | Path) -> pd.DataFrame:
    """Published numbers: every ``*.csv`` of the folder (columns REFERENCE_COLUMNS; '#' starts a comment).

    An optional ``tasks`` column names the tasks of a published average (comma-separated) when its
    per-task rows are not in the tables.
    """
    files = sorted(Path(folder).glob("*.csv"))
    if not files:
        raise FileNotFoundError(f"no published numbers (*.csv) in {folder}")
    ref = pd.concat([pd.read_csv(f, comment="#") for f in files], ignore_index=True)
    missing = [c for c in REFERENCE_COLUMNS if c not in ref.columns]
    if missing:
        raise ValueError(f"reference tables in {folder} lack columns {', '.join(missing)}")
    return ref


def averaged_tasks(ref: pd.DataFrame) -> dict[tuple[str, str], set[str]]:
    """Per (variant, model) with a published average: the tasks it covers, from its ``tasks`` cell when
    given, else the tasks the reference tables have rows for."""
    out = {}
    for r in ref[ref["task"] == AVG_TASK].itertuples():
        named = getattr(r, "tasks", None)
        if isinstance(named, str) and named.strip():
            out[(r.variant, r.model)] = {t.strip() for t in named.split(",")}
        else:
            mine = ref[(ref["variant"] == r.variant) & (ref["model"] == r.model) & (ref["task"] != AVG_TASK)]
            out[(r.variant, r.model)] = set(mine["task"])
    return out


def _reference_key(row: pd.Series, covered: dict[tuple[str, str], set[str]]) -> tuple[str, str, str] | None:
    """Our row's (task, variant, model); an average only matches one over exactly the same tasks."""
    if row["task"] == AVG_TASK:
        ours = set(str(row.get("tasks", "")).split(","))
        if ours != covered.get((row["variant"], row["model"])):
            return None
    return row["task"], row["variant"], row["model"]


def add_reference(table: pd.DataFrame, ref: pd.DataFrame, task: str | None = None) -> pd.DataFrame:
    """Published numbers beside ours (``published``); the rest as rows marked ``reference``."""
    covered = averaged_tasks(ref)
    if task is not None:
        ref = ref[ref["task"] == task]
    lookup = {(r.task, r.variant, r.model): r for r in ref.itertuples()}
    keys = [_reference_key(row, covered) for _, row in table.iterrows()]
    matched = set(keys)
    ours = table.assign(
        source="ours",
        published=[lookup[k].score if k in lookup else None for k in keys],
        published_source=[lookup[k].source if k in lookup else None for k in keys],
    )
    extra = pd.DataFrame(
        [
            {
                "task": r.task,
                "variant": r.variant,
                "model": r.model,
                "hparams": "reference",
                "main_metric": r.metric,
                "trainable_params": r.params_m * 1e6,
                "published": r.score,
                "published_source": r.source,
                "source": "reference",
            }
            for k, r in lookup.items()
            if k not in matched
        ]
    )
    columns = list(
        dict.fromkeys([*table.attrs.get("columns", table.columns), "published", "published_source", "source"])
    )
    merged = tidy(pd.concat([ours, extra], ignore_index=True) if len(extra) else ours, columns)
    merged.attrs["incomplete"] = table.attrs.get("incomplete", [])
    return merged


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
            "ci95: half-width of the 95% confidence interval of the mean (Student's t); n: seeds. tied: "
            f"cannot be told apart from the task's best (Welch's t-test over seeds, p >= {ALPHA}); - : fewer "
            "than 2 seeds on a side. rank: 1 = best test mean within the task.",
            "edge: the selected lr is the lowest (low) or highest (high) of its grid; widen the grid there.",
        ]
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
    if (table["task"] == AVG_TASK).any():
        lines.append(
            "avg: per variant, the mean over the tasks listed in `tasks` of its selected test mean; only the "
            "variants that ran every task are averaged."
        )
    if table.attrs.get("incomplete"):
        lines.append(f"No average for {', '.join(table.attrs['incomplete'])}: missing some task.")
    if "published" in table.columns:
        lines.append(
            "published: the papers' numbers (percent; results/reference/README.md cites them); an avg "
            "row gets one only when it covers the same tasks as the paper's average; source = reference "
            "marks published rows with no run of ours."
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
    "lr": "{:g}",
}


def cells(table: pd.DataFrame) -> pd.DataFrame:
    """The table as display strings: 2 decimals for metrics, '-' where there is no value."""

    def fmt(col: str, v: Any) -> str:
        if v is None or v is pd.NA or (isinstance(v, float) and pd.isna(v)):
            return "-"
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, (int, float)):
            return FORMAT_BY_COLUMN.get(col, "{:.2f}" if isinstance(v, float) else "{}").format(v)
        return str(v)

    return pd.DataFrame({c: [fmt(c, v) for v in table[c].astype(object)] for c in table.columns})


def render(table: pd.DataFrame, fmt: str) -> str:
    """The table as Markdown or an HTML fragment with its notes, or as CSV (rounded to 4 decimals)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "csv":
        return table.round(4).to_csv(index=False)
    if fmt == "html":
        items = "".join(f"<li>{html.escape(line)}</li>" for line in notes(table))
        page = f'<ul class="notes">{items}</ul>\n' + cells(table).to_html(index=False, classes="leaderboard")
        return page.encode("ascii", "xmlcharrefreplace").decode()  # no charset needed: a bare fragment
    return "".join(f"> {line}\n" for line in notes(table)) + "\n" + markdown_table(cells(table))


def selected_lrs_yaml(table: pd.DataFrame, source: str | Path) -> str:
    """``selected_lrs`` as the YAML file that ``${peft_bench.selected_lr:...}`` reads, saying its source."""
    lines = [
        f"# The lr selected on dev per task and variant by the tuned leaderboard of {source}.",
        f"# Made by: python -m bench leaderboard --results {source} --selected-lrs --out <this file>",
    ]
    for task, by_variant in selected_lrs(table).items():
        lines.append(f"{task}:")
        lines += [f"  {variant}: {lr:g}" for variant, lr in by_variant.items()]
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


def write_sweep_leaderboard(sweep_dir: str | Path, csv_path: str | Path) -> Path:
    """Write the sweep's tuned leaderboard to ``<sweep_dir>/leaderboard.md`` (compact) and ``.csv`` (every
    column); returns the md."""
    sweep_dir = Path(sweep_dir)
    runs = load_runs(csv_path)
    resumed = {json.loads(p.read_text())["config_hash"] for p in sweep_dir.glob("**/resumed.json")}
    mine = runs[runs["sweep"].map(lambda s: _same_path(s, sweep_dir)) | runs["config_hash"].isin(resumed)]
    if mine.empty:
        sweeps = sorted({s for s in runs["sweep"] if s})
        raise ValueError(
            f"no runs of sweep {sweep_dir} in {csv_path}; sweeps there: {', '.join(sweeps) or '(none)'}"
        )
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / "leaderboard.csv").write_text(render(tuned_board(mine, full=True), "csv"))
    md = sweep_dir / "leaderboard.md"
    md.write_text(f"# Leaderboard of sweep {sweep_dir.name}\n\n" + render(tuned_board(mine), "md"))
    return md


def _same_path(value: str, path: Path) -> bool:
    return bool(value) and (value == str(path) or Path(value).resolve() == path.resolve())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="peft-bench leaderboard", description=__doc__.split("\n\n")[0])
    p.add_argument("--results", default=default_results(), help=RESULTS_HELP)
    p.add_argument("--csv", help="a runs CSV to read instead of --results")
    p.add_argument("--task", help="only this task")
    p.add_argument("--format", default="md", choices=FORMATS, help="output format (default: md)")
    p.add_argument("--with-reference", action="store_true", help="add the published numbers")
    p.add_argument("--out", help="write to this file instead of stdout")
    views = p.add_mutually_exclusive_group()
    views.add_argument("--full", action="store_true", help="the tuned table with every column")
    views.add_argument(
        "--configs", action="store_true", help="every configuration (each lr of a grid), none selected"
    )
    views.add_argument(
        "--sensitivity", action="store_true", help="dev and test score against lr, per variant and task"
    )
    views.add_argument(
        "--selected-lrs",
        action="store_true",
        help="the selected lr per task and variant as YAML (conf/selected/*.yaml, read by experiment=demo)",
    )
    views.add_argument(
        "--diff",
        action="store_true",
        help="instead of the table, the settings in which the rows of each (task, variant, model) differ",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        runs = load(args.csv or args.results)
        if args.diff:
            text = render_differences(differences(runs, args.task), args.format)
        elif args.selected_lrs:
            text = selected_lrs_yaml(tuned_board(runs, args.task, full=True), args.csv or args.results)
        elif args.sensitivity:
            table = sensitivity(configurations(runs, args.task))
            text = (
                table.round(4).to_csv(index=False)
                if args.format == "csv"
                else render_plain(table, args.format)
            )
        else:
            table = aggregate(runs, args.task) if args.configs else tuned_board(runs, args.task, args.full)
            if args.with_reference:
                table = add_reference(table, load_reference(reference_dir(args.results)), args.task)
            text = render(table, args.format)
    except (FileNotFoundError, ValueError) as e:
        parser.error(str(e))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
