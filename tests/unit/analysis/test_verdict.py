"""bench.analysis.verdict: the report's answer first, per task (at chance, the papers' protocol) and over
all tasks (no best or cheapest named when the rank test cannot tell the variants apart)."""

from __future__ import annotations

import html
from dataclasses import replace

import pandas as pd

from bench.analysis.significance import Friedman
from bench.analysis.verdict import bayes_text, headline, overall_html, task_cells


def test_verdict_warns_at_chance_and_labels_the_paper_protocol():
    best = {
        "variant": "lora",
        "hparams": "lr=0.001",
        "mean_x100": 50.3,
        "ci95_x100": 0.2,
        "n": 3,
        "select_on": "test",
    }
    cells = task_cells(
        {"task": "sst2", "best": best, "tied": [], "cheapest": {}, "untested": ["vera"], "chance_x100": 50.0}
    )
    assert cells[:4] == ["sst2", "lora lr=0.001: 50.30 ± 0.20 (95% CI, n=3)", "none", "no cost recorded"]
    assert cells[4] == (
        "paper protocol: best epoch on the reported split; at chance (50.00): the best predicts the majority "
        "class; not tested (fewer than 2 seeds): vera"
    )
    clear = best | {"mean_x100": 50.6, "select_on": "dev"}
    cells = task_cells(
        {"task": "sst2", "best": clear, "tied": ["dora"], "cheapest": {}, "untested": [], "chance_x100": 50.0}
    )
    assert cells[2] == "dora" and cells[4] == ""  # 0.6 above chance, selected on dev: no remark


def test_no_overall_best_or_cheapest_when_the_ranks_do_not_differ():
    """Three tasks where head is last every time but the Friedman test cannot reject: naming "the
    cheapest of the tied" would recommend head, so the verdict names neither a best nor a cheapest."""
    ranks = pd.Series({"full": 2.0, "lora": 2.3, "head": 3.0})
    test = Friedman(tasks=["a", "b", "c"], scores=pd.DataFrame(), avg_rank=ranks, statistic=4.2, p=0.12,
                    nemenyi=pd.DataFrame(1.0, index=ranks.index, columns=ranks.index))  # fmt: skip
    verdict = {
        "best": "full",
        "tied": ["lora", "head"],
        "cheapest": {"train time": ["head"]},
        "friedman": test,
    }
    text = html.unescape(overall_html(verdict))
    assert "Over all 3 tasks (a, b, c): the ranks do not tell the variants apart (Friedman" in text
    assert "χ² = 4.20, p = 0.12, >= 0.05), so no overall best or cheapest is named" in text
    assert (
        "Best average rank: full (2.00)." in text and "cheapest of those" not in text and "head" not in text
    )
    decisive = html.unescape(overall_html(verdict | {"friedman": replace(test, p=0.01)}))
    assert "best full (average rank 2.00); tied with it (Nemenyi, p >= 0.05): lora, head;" in decisive
    assert "cheapest of those (mean over the tasks): train time: head. Friedman" in decisive


def test_the_headline_names_the_tied_cheapest_together_and_those_that_never_tie():
    rows = [  # task, variant, tied, params: lora and loraplus tie on both tasks at the same cost
        (t, v, tied, params)
        for t in ("a", "b")
        for v, tied, params in [("full", True, 22e6), ("lora", True, 73_728), ("loraplus", True, 73_728),
                                ("dora", True, 75_264), ("head", False, 768)]
    ]  # fmt: skip
    table = pd.DataFrame(
        [
            {
                "task": t,
                "variant": v,
                "tied": tied,
                "mean_x100": 80.0,
                "trainable_params": p,
                "pct_trainable": p / 22e6 * 100,
            }
            for t, v, tied, p in rows
        ]  # fmt: skip
    )
    text = headline(table, None)
    assert text.startswith("lora and loraplus tie with the best on 2 of 2 tasks at 0.335% of the weights")
    assert "(dora and full as often, at more weights); head ties with it on none." in text


def test_the_headline_says_what_the_bayesian_test_decides():
    ranks = pd.Series({"full": 1.2, "dora": 1.9, "vera": 2.9, "head": 4.0})
    bayes = pd.DataFrame(
        {"p_better": [0.0, 0.0, 0.0], "p_equivalent": [0.97, 0.5, 0.0], "p_worse": [0.03, 0.5, 1.0]},
        index=["dora", "vera", "head"],
    )
    test = Friedman(tasks=list("abcdefgh"), scores=pd.DataFrame(), avg_rank=ranks, statistic=30.0, p=0.001,
                    nemenyi=pd.DataFrame(), bayes=bayes)  # fmt: skip
    assert bayes_text(test) == (
        "Against the best average rank, full (1.20), the Bayesian signed-rank test over the 8 tasks "
        "(equivalent within 1 point; P >= 0.95) finds practically equivalent: dora; practically worse: "
        "head; undecided: vera."
    )
