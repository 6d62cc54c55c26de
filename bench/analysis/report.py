"""The report: one HTML page, the verdict first, readable offline (no request leaves it).

The page opens with the verdict (``bench.analysis.verdict``), then what a reader explores
(``bench.analysis.explorer``: task and variant filters, the Pareto plot over any two of the score and the
costs, the dev score against lr, the learning curves; drawn by plotly.js, which ``--out`` finds or writes
beside the page: ``bench.analysis.plotly_bundle``), the memory by what holds it and the average ranks over
three or more tasks (``bench.analysis.figures``; PNG embedded as base64), then the tables, sortable and
exported as CSV: the compact tuned leaderboard (fits the page), every column, every configuration. The
runs come from a results folder's runs.csv, a sweep folder's run folders, or a runs CSV (``--csv``).

    python -m bench report --results results --out results/report.html
"""

from __future__ import annotations

import argparse
import html
import sys
from datetime import datetime
from pathlib import Path

import pandas as pd

from bench.analysis import runs_table
from bench.analysis.bayes import ROPE_X100
from bench.analysis.configurations import aggregate, configurations, tuned_board
from bench.analysis.explorer import explorer_data, explorer_section
from bench.analysis.figures import Style, cd_figure, memory_figure, png
from bench.analysis.leaderboard import RESULTS_HELP
from bench.analysis.plotly_bundle import ASSETS, bundle_name, place
from bench.analysis.render import cells, note, render
from bench.analysis.selection import AVG_TASK, sensitivity, sort_tasks
from bench.analysis.setting import setting_text
from bench.analysis.significance import ALPHA, Friedman, friedman
from bench.analysis.verdict import verdict_section
from bench.inputs.metrics import TEST
from bench.plural import plural
from bench.results.run_folder import default_results

WRAPPED = ("hparams", "budget")  # the compact table's columns that wrap, so that it fits the page
STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;padding:0 1em;max-width:1400px;color:#222}
h1{margin-bottom:.2em} h2{margin-top:1.6em;border-bottom:1px solid #ddd}
img{max-width:100%;display:block;margin:.5em 0} .note{color:#8a5a00}
table.leaderboard,table.verdict{border-collapse:collapse;font-size:12px}
.leaderboard td,.leaderboard th,.verdict td,.verdict th{padding:2px 6px;border:1px solid #ccc}
.leaderboard td{text-align:right;white-space:nowrap} .leaderboard tr:nth-child(even){background:#f6f6f6}
.verdict td,.verdict th{text-align:left;vertical-align:top} #verdict p{margin:.4em 0}
.fit table.leaderboard{width:100%;font-size:11px} .fit .leaderboard th{overflow-wrap:anywhere}
ul.notes{font-size:13px;color:#444} .wide{overflow-x:auto} figcaption,.caption{font-size:13px;color:#444}
.leaderboard th{cursor:pointer} .leaderboard th[aria-sort=ascending]::after{content:" ▲"}
.leaderboard th[aria-sort=descending]::after{content:" ▼"} button.csv{margin:.4em 0;font-size:12px}
#filters fieldset{display:inline-block;border:1px solid #ccc;margin:0 1em .5em 0;font-size:14px}
#filters label{margin-right:.8em;white-space:nowrap} .swatch{display:inline-block;width:.8em;height:.8em;
margin:0 .25em 0 .15em;border-radius:50%} .plots{display:grid;grid-template-columns:repeat(auto-fill,
minmax(420px,1fr));gap:.5em}"""


def selected_rows(tuned: pd.DataFrame) -> pd.DataFrame:
    """The tuned rows that selected a scored configuration (one per task, variant, model, budget), no
    averages: a row to select on dev needs a dev score (the tuned table keeps one without, to count
    its runs)."""
    on_test = tuned["select_on"].eq(TEST) if "select_on" in tuned else False
    keep = (tuned["task"] != AVG_TASK) & tuned["mean_x100"].notna()
    return tuned[keep & (tuned["dev_x100"].notna() | on_test)].reset_index(drop=True)


def rank_table(test: Friedman) -> str:
    """Average rank, the Bayesian probabilities against the best-ranked variant and the test mean per task
    of each variant, best rank first, as an HTML table."""
    table = test.scores.T.loc[test.avg_rank.index]
    if test.bayes is not None:
        table = pd.concat([test.bayes.reindex(table.index), table], axis=1)
    table.insert(0, "avg_rank", test.avg_rank)
    return cells(table.reset_index()).to_html(index=False, classes="leaderboard")


def rank_sections(test: Friedman | None, style: Style) -> list[str]:
    """The average rank table and the critical-difference diagram (three or more tasks)."""
    if test is None:
        return []
    caption = (
        f"Average rank over {', '.join(test.tasks)} (1 = best); a bar joins the variants the Nemenyi test "
        f"cannot tell apart (p >= {ALPHA}); Friedman χ² = {test.statistic:.2f}, p = {test.p:.3g}. "
        "Demšar, Statistical comparisons of classifiers over multiple data sets, JMLR 7 (2006). "
        f"p_better, p_equivalent, p_worse: the Bayesian signed-rank test of each variant against "
        f"{test.avg_rank.index[0]} over the tasks, equivalent within {ROPE_X100:g} point of the score ×100 "
        "(Benavoli et al., Time for a change, JMLR 18, 2017)."
    )
    return [
        "<h2>Average rank over the tasks</h2>",
        rank_table(test),
        f"<figure>{png(cd_figure(test, style), 'critical difference diagram')}",
        f"<figcaption>{html.escape(caption)}</figcaption></figure>",
    ]


def plot_sections(runs: pd.DataFrame, rows: pd.DataFrame, test: Friedman | None, source: Path,
                  plotly_src: str) -> list[str]:  # fmt: skip
    """The plots, in order: the explorer (Pareto view, sensitivity, learning curves), memory by what
    holds it, ranks."""
    if rows.empty:
        return [
            note(
                "No completed runs: nothing to plot (failed, diverged and oom runs are counted in the table)."
            )
        ]
    configs = configurations(runs)
    style = Style(configs)
    out = [explorer_section(explorer_data(runs, rows, sensitivity(configs), source), plotly_src)]
    out.append("<h2>Memory by what holds it, beside the score (one training step, by tensor)</h2>")
    fig = memory_figure(rows, style)
    out.append(png(fig, "memory by what holds it") if fig else note("No run recorded its memory by tensor."))
    return out + rank_sections(test, style)


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
        f'<div class="fit">{cells(compact).to_html(index=False, classes="leaderboard")}</div>',
        "<h3>Every column (what each column means)</h3>",
        f'<div class="wide">{render(tuned, "html")}</div>',
        "<details><summary>Every configuration (each point of each grid, none selected)</summary>",
        f'<div class="wide">{render(aggregate(runs), "html")}</div></details>',
    ]


def build_report(source: str | Path, plotly_src: str | None = None) -> str:
    """The whole page as a string; ``source``: a results or sweep folder, or a runs CSV; ``plotly_src``:
    the path of plotly.js relative to the page (default: ``assets/`` beside it)."""
    source = Path(source)
    runs = runs_table.load(source)
    tuned = tuned_board(runs, full=True, source=source)
    compact = tuned_board(runs, source=source)
    rows = selected_rows(tuned)
    test = friedman(rows)
    done = int((runs["status"] == "completed").sum())
    summary = (
        f"{plural(len(runs), 'run')} ({done:,} completed, {len(runs) - done:,} failed, diverged or oom) on "
        f"{', '.join(sort_tasks(runs['task']))}; from {source}, {datetime.now():%Y-%m-%d %H:%M}. "
        "Score = test metric at the epoch selected on the dev set (rows marked select_on test: on the "
        "reported split, as the papers do); each variant at its configuration with the best mean dev "
        "score; means over seeds, ×100."
    )
    body = [
        f"<h1>peft-bench report</h1><p>{html.escape(summary)}</p>",
        f'<p class="setting">{html.escape(setting_text(runs, rows, source))}</p>',
        verdict_section(rows, test),
        *plot_sections(runs, rows, test, source, plotly_src or f"{ASSETS}/{bundle_name()}"),
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
    parser.add_argument("--results", default=default_results(), help=RESULTS_HELP)
    parser.add_argument("--csv", help="a runs CSV to read instead of --results")
    parser.add_argument("--out", help="HTML file (default: <results>/report.html)")
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out else Path(args.results) / "report.html"
    try:
        page = build_report(args.csv or args.results, place(out))
    except (FileNotFoundError, ValueError) as e:
        parser.error(str(e))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
