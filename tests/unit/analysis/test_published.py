"""bench.analysis.published: the papers' numbers in the committed reference tables, and how they are set
beside ours (a published average only over the tasks the paper averaged)."""

from __future__ import annotations

import pandas as pd
from helpers.results import without

from bench.analysis import configurations, published


def test_reference_tables_hold_the_published_numbers():
    ref = published.load_reference(published.REPO_REFERENCE)
    by = ref.set_index(["task", "variant", "model"])["score"]
    roberta = {
        "mnli": (87.6, 87.5),
        "sst2": (94.8, 95.1),
        "mrpc": (90.2, 89.7),
        "cola": (63.6, 63.4),
        "qnli": (92.8, 93.3),
        "qqp": (91.9, 90.8),
        "rte": (78.7, 86.6),
        "stsb": (91.2, 91.5),
        "avg": (86.4, 87.2),
    }
    for task, (full, lora) in roberta.items():
        assert (by[(task, "full", "roberta_base")], by[(task, "lora", "roberta_base")]) == (full, lora)
    vera = {"sst2": 94.6, "mrpc": 89.5, "cola": 65.6, "qnli": 91.8, "rte": 78.7, "stsb": 90.7}
    assert {t: by[(t, "vera", "roberta_base")] for t in vera} == vera
    assert [by[("avg", v, "deberta_v3_base")] for v in ("full", "lora", "adalora")] == [88.09, 88.34, 89.31]
    assert ref["source"].str.contains(r"Table \d").all()
    glue = {"cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte"}
    assert set(ref["task"]) <= {*glue, "avg"}
    covered = published.averaged_tasks(ref)
    assert covered[("lora", "roberta_base")] == covered[("full", "roberta_base")] == glue  # from the rows
    assert covered[("adalora", "deberta_v3_base")] == glue  # from the tasks column
    assert ("vera", "roberta_base") not in covered  # no published average


def test_with_reference_tuned_averages_match_only_the_same_tasks(results):
    """The tuned view's averages over cola and sst2 get no published number (the papers average 8 GLUE
    tasks); the papers' averages show apart, as reference rows."""
    ref = published.load_reference(published.REPO_REFERENCE)
    tuned = configurations.tuned_board(without(results / "runs.csv", "rte", "mrpc"))
    table = published.add_reference(tuned, ref)
    ours = table[table["source"] == "ours"]
    avg = ours[ours["task"] == "avg"]
    assert sorted(avg["variant"]) == ["full", "lora"] and avg["published"].isna().all()
    assert ours.loc[ours["task"].eq("sst2") & ours["variant"].eq("full"), "published"].item() == 94.8
    published_avg = table[table["source"].eq("reference") & table["task"].eq("avg")]
    assert {"full", "lora"} <= set(published_avg["variant"])


def test_published_average_matches_only_over_the_papers_tasks():
    ref = published.load_reference(published.REPO_REFERENCE)
    glue = "cola,mnli,mrpc,qnli,qqp,rte,sst2,stsb"
    ours = pd.DataFrame(  # avg rows as the tuned view has them (ranked among the averages)
        [
            {
                "rank": 1,
                "task": "avg",
                "variant": "lora",
                "model": "roberta_base",
                "mean_x100": 86.0,
                "tasks": glue,
            },
            {
                "rank": 2,
                "task": "avg",
                "variant": "full",
                "model": "roberta_base",
                "mean_x100": 85.0,
                "tasks": "cola,sst2",
            },
            {
                "rank": 1,
                "task": "avg",
                "variant": "adalora",
                "model": "deberta_v3_base",
                "mean_x100": 89.0,
                "tasks": glue,
            },
        ]
    )
    table = published.add_reference(ours, ref).set_index(["task", "variant", "model", "source"])
    assert table.loc[("avg", "lora", "roberta_base", "ours"), "published"] == 87.2
    assert pd.isna(table.loc[("avg", "full", "roberta_base", "ours"), "published"])
    assert table.loc[("avg", "full", "roberta_base", "reference"), "published"] == 86.4  # shown apart
    assert table.loc[("avg", "adalora", "deberta_v3_base", "ours"), "published"] == 89.31
