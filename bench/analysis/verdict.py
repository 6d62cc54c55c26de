"""The report's verdict, the answer before the evidence: the headline (``headline``: which methods tie with
the best on how many tasks, at what share of the weights, and what the rank and Bayesian tests over the
tasks support), then per task the best method (the tuned row with the highest test mean), the methods
tied with it (by the test its ``tie_test`` names: the paired bootstrap over test examples and seeds with
Holm's correction, or Welch's t-test over seeds for runs without predictions) and the cheapest of those by
trainable parameters, peak memory and train time (every method within a tolerance of the cheapest);
over three or more tasks, the same by average rank (Friedman test, Nemenyi post-hoc), or no overall best
when the ranks do not tell the variants apart. The verdicts come from ``bench.analysis.significance``;
this module words them as an HTML section with a row per task, each with its remarks (paper protocol, at
chance, too few seeds to test)."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from bench.analysis.bayes import ROPE_X100
from bench.analysis.render import note
from bench.analysis.selection import row_in_words
from bench.analysis.significance import (
    ALPHA,
    CHEAP_WITHIN,
    CHEAPEST_BY,
    PAIRED,
    WELCH,
    Friedman,
    overall_verdict,
    task_verdicts,
    tie_counts,
)
from bench.inputs.metrics import TEST
from bench.plural import plural

DECISIVE = 0.95  # a Bayesian probability a reader can act on (Benavoli et al. 2017 use 0.95)
TEST_WORDS = {
    PAIRED: "the paired bootstrap over test examples and seeds with Holm's correction over the methods "
    "compared (adjusted p >= {alpha})",
    WELCH: "Welch's t-test over seeds (p >= {alpha}; these runs kept no test predictions)",
}
CHANCE_MARGIN = 0.5  # a best within this many points (x100) of chance predicts the majority class
PAPER_PROTOCOL = "paper protocol: best epoch on the reported split"
TASK_HEAD = ("best (test mean ± 95% CI)", "tied with the best", "cheapest of best + tied", "remarks")
NO_OVERALL = "No verdict over all tasks: the rank tests need 3+ tasks and 3+ variants on all."


def names(variants: list[str]) -> str:
    return ", ".join(variants) or "none"


def both(variants: list[str]) -> str:
    """ "lora", "lora and loraplus", "a, b and c"."""
    return " and ".join([", ".join(variants[:-1]), variants[-1]]) if len(variants) > 1 else names(variants)


def cheapest_text(cheapest: dict[str, list[str]]) -> str:
    """ "trainable parameters: lora and loraplus; peak memory: lora; train time: dora"."""
    return "; ".join(f"{what}: {both(variants)}" for what, variants in cheapest.items()) or "no cost recorded"


def tests_text(verdicts: list[dict[str, Any]]) -> str:
    """Which test marks the ties of which tasks, in words."""
    by_test: dict[str, list[str]] = {}
    for v in verdicts:
        by_test.setdefault(v.get("tie_test") or WELCH, []).append(v["task"])
    parts = [
        f"{TEST_WORDS[test].format(alpha=ALPHA)} on {', '.join(tasks)}"
        for test, tasks in sorted(by_test.items(), key=lambda kv: kv[0] != PAIRED)
    ]
    return "Tied: not told apart from the task's best by " + "; by ".join(parts)


def bayes_text(test: Friedman) -> str:
    """What the Bayesian signed-rank test against the best-ranked method decides (P >= DECISIVE)."""
    if test.bayes is None or test.bayes.empty:
        return ""
    best, probs = test.avg_rank.index[0], test.bayes
    decided = [
        (label, probs.index[probs[col] >= DECISIVE].tolist())
        for label, col in (("better", "p_better"), ("equivalent", "p_equivalent"), ("worse", "p_worse"))
    ]
    found = [f"practically {label}: {both(vs)}" for label, vs in decided if vs]
    undecided = [v for v in probs.index if all(v not in vs for _, vs in decided)]
    return (
        f"Against the best average rank, {best} ({test.avg_rank.iloc[0]:.2f}), the Bayesian signed-rank "
        f"test over the {len(test.tasks)} tasks (equivalent within {ROPE_X100:g} point; P >= {DECISIVE}) "
        f"finds {'; '.join(found) or 'nothing decisive'}"
        + (f"; undecided: {both(undecided)}" if found and undecided else "")
        + "."
    )


def headline(tuned: pd.DataFrame, test: Friedman | None) -> str:
    """One or two sentences a reader acts on: the cheapest of the methods that tie with the best on the
    most tasks (every one within CHEAP_WITHIN of it named), those that never tie, and what the rank and
    Bayesian tests over the tasks support. Never an overall winner the tests do not support."""
    counts = tie_counts(tuned)
    if counts.empty:
        return ""
    top = counts[counts["ties"] == counts["ties"].iloc[0]]
    n = int(counts["tasks"].max())
    cheap = top.index[:1].tolist()
    if "trainable_params" in top and top["trainable_params"].notna().any():
        low = top["trainable_params"].min()
        cheap = top.index[top["trainable_params"] <= low * (1 + CHEAP_WITHIN["trainable_params"])].tolist()
    verb = "tie" if len(cheap) > 1 else "ties"
    text = f"{both(cheap)} {verb} with the best on {top['ties'].iloc[0]} of {n} tasks"
    pct = top.loc[cheap[0]].get("pct_trainable")
    if pct is not None and not pd.isna(pct):
        text += f" at {pct:.3g}% of the weights"
    others = [v for v in top.index if v not in cheap]
    if others:
        text += f" ({both(others)} as often, at more weights)"
    never = counts.index[counts["ties"] == 0].tolist()
    if never:
        text += f"; {both(never)} {'tie' if len(never) > 1 else 'ties'} with it on none"
    return " ".join([f"{text}.", bayes_text(test) if test is not None else ""]).strip()


def overall_html(verdict: dict[str, Any]) -> str:
    """``overall_text`` as a bold HTML paragraph."""
    return f"<p><b>{html.escape(overall_text(verdict))}.</b></p>"


def overall_text(verdict: dict[str, Any]) -> str:
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
    return text


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
    head = ["task", *TASK_HEAD]
    first = headline(tuned, test) if len(verdicts) > 1 else ""
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in task_cells(v)) + "</tr>" for v in verdicts
    )
    parts = ['<section id="verdict"><h2>Verdict</h2>']
    if first:
        parts.append(f'<p class="headline"><b>{html.escape(first.strip())}</b></p>')
    if overall:
        parts.append(overall_html(overall))
    elif len(verdicts) > 1:
        parts.append(note(NO_OVERALL))
    within = ", ".join(f"{CHEAP_WITHIN[col]:.0%} ({what})" for col, what in CHEAPEST_BY.items())
    method = (
        f"Per task, best: the highest test mean of the tuned rows. {tests_text(verdicts)}. Cheapest: the "
        f"lowest cost among the best and the tied, with every method within {within} of it."
    )
    parts += [
        f"<p>{html.escape(method)}</p>",
        '<table class="verdict"><thead><tr>' + "".join(f"<th>{html.escape(h)}</th>" for h in head),
        f"</tr></thead><tbody>{body}</tbody></table></section>",
    ]
    return "\n".join(parts)
