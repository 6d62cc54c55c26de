"""The leaderboard: the tuned comparison by default, every configuration on request, as aligned tables in a
terminal, Markdown (piped, or --format md), CSV or HTML.

python -m bench leaderboard --task sst2 --format md --with-reference
python -m bench leaderboard --configs  # every configuration (each point of an lr grid)
python -m bench leaderboard --diff     # the settings in which each (task, variant, model)'s rows differ
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import pandas as pd

from bench.analysis.configurations import aggregate, configurations, tuned_board
from bench.analysis.diff import differences, render_differences
from bench.analysis.published import add_reference, load_reference, reference_dir
from bench.analysis.render import FORMATS, csv_text, render, render_plain, selected_lrs_yaml
from bench.analysis.runs_table import load
from bench.analysis.selection import sensitivity
from bench.analysis.terminal import TERMINAL, capture, draw_sensitivity, draw_tuned
from bench.results.run_folder import default_results

RESULTS_HELP = (
    "results folder (reads its runs.csv) or sweep folder (reads its run folders); "
    "default: $PEFT_BENCH_RESULTS, else results"
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="peft-bench leaderboard", description=__doc__.split("\n\n")[0])
    p.add_argument("--results", default=default_results(), help=RESULTS_HELP)
    p.add_argument("--csv", help="a runs CSV to read instead of --results")
    p.add_argument("--task", help="only this task")
    p.add_argument(
        "--format",
        choices=(TERMINAL, *FORMATS),
        help=f"output format (default: {TERMINAL} when stdout is a terminal, else md); {TERMINAL}: the "
        "tuned view and --sensitivity as aligned tables that fit the terminal, the other views as md",
    )
    p.add_argument("--notes", action="store_true", help=f"with --format {TERMINAL}: what the columns mean")
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
    """The command: the runs (``bench.analysis.runs_table``) as the view asked for, from
    ``bench.analysis.configurations``, ``diff``, ``published`` and ``render``, or drawn by
    ``bench.analysis.terminal`` (on a terminal, or ``--format term``); to ``--out`` or stdout."""
    parser = build_parser()
    args = parser.parse_args(argv)
    on_terminal = not args.out and sys.stdout.isatty()
    fmt = args.format or (TERMINAL if on_terminal else "md")
    width = shutil.get_terminal_size().columns  # $COLUMNS when set, else the terminal's, else 80
    source = args.csv or args.results
    try:
        runs = load(source)
        if fmt == TERMINAL and args.sensitivity:
            table = sensitivity(configurations(runs, args.task))
            text = capture(lambda console: draw_sensitivity(table, console), width, on_terminal)
        elif fmt == TERMINAL and not (args.full or args.configs or args.diff or args.selected_lrs):
            table = tuned_board(runs, args.task, True, source)
            if args.with_reference:
                table = add_reference(table, load_reference(reference_dir(args.results)), args.task)
            text = capture(lambda console: draw_tuned(table, console, args.notes), width, on_terminal)
        else:
            text = text_view(args, runs, "md" if fmt == TERMINAL else fmt)
    except (FileNotFoundError, ValueError) as e:
        parser.error(str(e))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text)
    return 0


def text_view(args: argparse.Namespace, runs: pd.DataFrame, fmt: str) -> str:
    """The view ``args`` asks for as Markdown, CSV or HTML (``fmt``)."""
    source = args.csv or args.results
    if args.diff:
        return render_differences(differences(runs, args.task), fmt)
    if args.selected_lrs:
        return selected_lrs_yaml(tuned_board(runs, args.task, full=True), source)
    if args.sensitivity:
        table = sensitivity(configurations(runs, args.task))
        return csv_text(table) if fmt == "csv" else render_plain(table, fmt)
    table = aggregate(runs, args.task) if args.configs else tuned_board(runs, args.task, args.full, source)
    if args.with_reference:
        table = add_reference(table, load_reference(reference_dir(args.results)), args.task)
    return render(table, fmt)


if __name__ == "__main__":
    sys.exit(main())
