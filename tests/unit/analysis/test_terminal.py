"""bench.analysis.terminal: the tuned leaderboard and the lr sensitivity drawn for a terminal, on the
archived comparison (results/archive/compare: 8 variants, 3 tasks, two metrics) at 80 and 120 columns,
and the command's choice between them and plain Markdown."""

from __future__ import annotations

import re
import sys

import pandas as pd
import pytest
from helpers.paths import ROOT

from bench.analysis import leaderboard
from bench.analysis.configurations import configurations, tuned_board
from bench.analysis.render import notes
from bench.analysis.runs_table import load
from bench.analysis.selection import sensitivity
from bench.analysis.significance import friedman
from bench.analysis.terminal import (
    BEST,
    HINT,
    TEST_SCORE,
    TIED,
    UNTESTED,
    capture,
    draw_sensitivity,
    draw_tuned,
    short_count,
    tie_marker,
)
from bench.analysis.verdict import headline

ARCHIVE = ROOT / "results" / "archive" / "compare"
TASKS = ["rt_polarity", "rt_rating", "tweet_polarity"]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def runs() -> pd.DataFrame:
    return load(ARCHIVE)


@pytest.fixture(scope="module")
def tuned(runs) -> pd.DataFrame:
    return tuned_board(runs, full=True, source=ARCHIVE)


def lines_at(draw, width: int) -> list[str]:
    """What ``draw`` prints on a colour terminal ``width`` columns wide, its lines without the styles."""
    return ANSI.sub("", capture(draw, width, color=True)).splitlines()


@pytest.mark.parametrize("width", [80, 120])
def test_the_tuned_view_fits_the_terminal_with_one_table_per_task_and_the_verdict_first(tuned, width):
    lines = lines_at(lambda console: draw_tuned(tuned, console), width)
    assert max(len(line) for line in lines) <= width
    headers = [i for i, line in enumerate(lines) if TEST_SCORE in line]
    assert len(headers) == len(TASKS)  # one table per task, its header on one line
    for task, at in zip(TASKS, headers, strict=True):
        heading = [i for i, line in enumerate(lines) if line.startswith(f"{task} (")]
        assert len(heading) == 1 and heading[0] < at
        assert lines[heading[0] + 1].startswith("best (test mean ± 95% CI): ")
    assert lines[heading[0]] == "tweet_polarity (accuracy ×100)"
    text = " ".join(" ".join(lines[: headers[0]]).split())
    assert lines[0] == "Verdict"
    assert headline(tuned, friedman(tuned)) in text  # the verdict sentences, before the first table
    assert "Friedman test over the ranks: χ² = 10.67, p = 0.154" in text
    full = next(line for line in lines[headers[0] :] if line.startswith("1  full"))
    assert "82.30 ± 1.38" in full and BEST in full and "22.7M" in full
    assert any(line.startswith("6  vera") and TIED not in line for line in lines)  # not tied: no marker
    last = " ".join(" ".join(lines[-3:]).split())
    assert last.endswith(HINT) and notes(tuned)[0][:30] not in " ".join(lines)  # the notes: a flag away


def test_the_average_ranks_by_average_rank_and_says_it_mixes_metrics(tuned):
    lines = lines_at(lambda console: draw_tuned(tuned, console), 120)
    start = lines.index(next(line for line in lines if line.startswith("avg over rt_polarity")))
    assert lines[start + 1].split() == ["#", "variant", "avg_rank", "mean", "test_x100", "params", "%"]
    assert lines[start + 2].split()[:4] == ["1", "full", "2.00", "83.84"]
    # dora's mean is above qlora's, but qlora's ranks are better
    assert [line.split()[1] for line in lines[start + 3 : start + 5]] == ["qlora", "dora"]
    assert any(line.startswith("avg mixes metrics (accuracy+pearson)") for line in lines)


def test_the_notes_are_a_flag_away(tuned):
    text = " ".join(" ".join(lines_at(lambda c: draw_tuned(tuned, c, with_notes=True), 120)).split())
    for note in notes(tuned):
        assert " ".join(note.split()) in text
    assert HINT not in text


@pytest.mark.parametrize("width", [80, 120])
def test_sensitivity_is_a_variant_by_lr_grid_per_task(runs, width):
    sens = sensitivity(configurations(runs))
    lines = lines_at(lambda console: draw_sensitivity(sens, console), width)
    assert max(len(line) for line in lines) <= width
    titles = [line.strip() for line in lines if line.endswith("by lr") or "by lr " in line]
    assert titles == [f"{task}: dev / test ×100 by lr" for task in TASKS]
    assert len(lines) < len(sens)  # a grid, not a row per point
    head = lines[1].split()
    assert head == ["variant", "lr", "×1", "×4", "×16", "×64", "×256"]
    # rt_polarity adalora: lowest lr 0.0008, selected at x64 (dev 80.15, test 79.43)
    dev, test = lines[2].split(), lines[3].split()
    assert dev == ["adalora", "0.0008", "dev", "63.42", "64.26", "79.92", "80.15*", "50.20"]
    assert test == ["test", "62.67", "64.30", "79.33", "79.43", "50.30"]


def test_tie_marker_and_short_counts():
    rows = pd.DataFrame(
        {"mean_x100": [90.0, 89.0, 70.0, 60.0, None], "tied": [True, True, False, None, None]}
    )
    assert [tie_marker(r, 0) for _, r in rows.iterrows()] == [BEST, TIED, "", UNTESTED, ""]
    assert [short_count(n) for n in (642, 8_322, 74_370, 2_654_850, 22_713_858, None)] == [
        "642", "8.32k", "74.4k", "2.65M", "22.7M", "-",
    ]  # fmt: skip


def test_a_terminal_gets_the_tables_and_a_pipe_gets_markdown(results, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    assert leaderboard.main(["--results", str(results)]) == 0
    piped = capsys.readouterr().out
    assert piped.startswith("> ") and "| rank | task |" in piped  # not a terminal: Markdown, as before
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert leaderboard.main(["--results", str(results)]) == 0
    shown = ANSI.sub("", capsys.readouterr().out)
    assert shown.startswith("Verdict") and "| rank |" not in shown
    assert max(len(line) for line in shown.splitlines()) <= 80
    assert sum(TEST_SCORE in line for line in shown.splitlines()) == 4  # cola, mrpc, rte, sst2
    assert leaderboard.main(["--results", str(results), "--full"]) == 0
    assert "| rank | task |" in capsys.readouterr().out  # the full table: Markdown on a terminal too
    assert leaderboard.main(["--results", str(results), "--format", "md"]) == 0
    assert capsys.readouterr().out.startswith("> ")
