"""The report's verdict, the answer before the evidence: per task, the best method (the tuned row with the
highest test mean), the methods tied with it (Welch's t-test over seeds, p >= ALPHA) and the cheapest of
those by trainable parameters, peak memory and train time; over three or more tasks, the same by average
rank (Friedman test, Nemenyi post-hoc), or no overall best when the ranks do not tell the variants apart.
The verdicts come from ``bench.analysis.significance``; this module words them as an HTML section with a
row per task, each with its remarks (paper protocol, at chance, too few seeds to test)."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from bench.analysis.render import note
from bench.analysis.selection import row_in_words
from bench.analysis.significance import ALPHA, Friedman, overall_verdict, task_verdicts
from bench.inputs.metrics import TEST
from bench.plural import plural

CHANCE_MARGIN = 0.5  # a best within this many points (x100) of chance predicts the majority class
PAPER_PROTOCOL = "paper protocol: best epoch on the reported split"


def names(variants: list[str]) -> str:
    return ", ".join(variants) or "none"


def cheapest_text(cheapest: dict[str, str]) -> str:
    """ "trainable parameters: lora; peak memory: lora; train time: dora"."""
    return "; ".join(f"{what}: {variant}" for what, variant in cheapest.items()) or "no cost recorded"


def overall_html(verdict: dict[str, Any]) -> str:
    """The verdict over all tasks: best by average rank, its Nemenyi ties, the cheapest of those; none of
    them when the Friedman test finds no difference in the ranks (a "cheapest of the tied" would then
    name the worst variant as often as not)."""
    test: Friedman = verdict["friedman"]
    tasks = f"Over all {plural(len(test.tasks), 'task')} ({', '.join(test.tasks)})"
    friedman = f"Friedman test over the ranks: χ² = {test.statistic:.2f}, p = {test.p:.3g}"
    if test.p >= ALPHA:
        text = (
            f"{tasks}: the ranks do not tell the variants apart ({friedman}, >= {ALPHA}), so no overall best "
            f"or cheapest is named; read the verdict of each task below. Best average rank: "
            f"{verdict['best']} ({test.avg_rank.iloc[0]:.2f})"
        )
    else:
        text = (
            f"{tasks}: best {verdict['best']} (average rank {test.avg_rank.iloc[0]:.2f}); tied with it "
            f"(Nemenyi, p >= {ALPHA}): {names(verdict['tied'])}; cheapest of those (mean over the tasks): "
            f"{cheapest_text(verdict['cheapest'])}. {friedman}"
        )
    return f"<p><b>{html.escape(text)}.</b></p>"


def task_cells(v: dict[str, Any]) -> list[str]:
    """A task's verdict as cells: task, best (its hparams, test mean ± CI, n), tied, cheapest, remarks."""
    best, chance, remarks = v["best"], v["chance_x100"], []
    if best.get("select_on") == TEST:
        remarks.append(PAPER_PROTOCOL)
    if chance is not None and not pd.isna(chance) and best["mean_x100"] < chance + CHANCE_MARGIN:
        remarks.append(f"at chance ({chance:.2f}): the best predicts the majority class")
    if v["untested"]:
        remarks.append(f"not tested (fewer than 2 seeds): {names(v['untested'])}")
    return [v["task"], row_in_words(best), names(v["tied"]), cheapest_text(v["cheapest"]), "; ".join(remarks)]


def verdict_section(tuned: pd.DataFrame, test: Friedman | None) -> str:
    """The verdict: over all tasks (when the rank tests apply), then a row per task."""
    verdicts = task_verdicts(tuned)
    overall = overall_verdict(tuned, test)
    head = ["task", "best (test mean ± 95% CI)", "tied with the best", "cheapest of best + tied", "remarks"]
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in task_cells(v)) + "</tr>" for v in verdicts
    )
    parts = ['<section id="verdict"><h2>Verdict</h2>']
    if overall:
        parts.append(overall_html(overall))
    elif len(verdicts) > 1:
        parts.append(note("No verdict over all tasks: the rank tests need 3+ tasks and 3+ variants on all."))
    method = (
        f"Per task, best: the highest test mean of the tuned rows; tied: not told apart from it by Welch's "
        f"t-test over seeds (p >= {ALPHA}); cheapest: the lowest cost among the best and the tied."
    )
    parts += [
        f"<p>{html.escape(method)}</p>",
        '<table class="verdict"><thead><tr>' + "".join(f"<th>{html.escape(h)}</th>" for h in head),
        f"</tr></thead><tbody>{body}</tbody></table></section>",
    ]
    return "\n".join(parts)
