"""bench.analysis.columns: the views' column lists, and ``tidy``, which puts a table in a view's shape."""

from __future__ import annotations

import pandas as pd

from bench.analysis.columns import (
    COMPACT_COLUMNS,
    CONFIG_COLUMNS,
    METRICS,
    OPTIONAL,
    TUNED_COLUMNS,
    tidy,
)

VIEW = ["rank", "task", "variant", "mean_x100", METRICS, "n", "budget", "select_on", "published"]


def table(**extra) -> pd.DataFrame:
    """Three rows out of order (the average first, ranks reversed), with other metrics and extra columns."""
    return pd.DataFrame(
        {
            "task": ["avg", "sst2", "cola", "sst2"],
            "variant": ["lora", "full", "lora", "lora"],
            "rank": [1.0, 2.0, 1.0, 1.0],
            "n": ["3", "3", "2", "3"],
            "mean_x100": [80.0, 90.0, 60.0, 92.0],
            "std_x100": [0.0, 1.0, 2.0, 3.0],
            "f1_x100": [None, 91.0, None, 93.0],
            "accuracy_m_x100": [None, 88.0, None, 89.0],
            "select_on": ["dev"] * 4,
            "left_out": ["x"] * 4,
            **extra,
        }
    )


def test_tidy_puts_the_columns_in_the_views_order_the_metrics_in_place():
    tidied = tidy(table(), VIEW)
    # METRICS: the other *_x100 columns, sorted, the statistics not among them; no budget, no published
    # (optional, absent); select_on dropped (every row selected on dev); left_out not in the view
    expected = ["rank", "task", "variant", "mean_x100", "accuracy_m_x100", "f1_x100", "n"]
    assert tidied.columns.tolist() == expected
    assert tidied.attrs["columns"] == [c for c in VIEW if c != METRICS]


def test_tidy_orders_rows_by_task_then_rank_the_average_last():
    tidied = tidy(table(), VIEW)
    assert tidied[["task", "variant"]].values.tolist() == [
        ["cola", "lora"],
        ["sst2", "lora"],
        ["sst2", "full"],
        ["avg", "lora"],
    ]
    assert tidied.index.tolist() == [0, 1, 2, 3]


def test_tidy_makes_counts_integers():
    tidied = tidy(table(), VIEW)
    assert str(tidied["rank"].dtype) == str(tidied["n"].dtype) == "Int64"
    assert tidied["n"].tolist() == [2, 3, 3, 3]


def test_tidy_shows_an_optional_column_the_table_has_and_select_on_when_a_row_used_test():
    tidied = tidy(table(budget=["a", "a", "b", "a"], select_on=["dev", "test", "dev", "dev"]), VIEW)
    assert tidied.columns.tolist()[-3:] == ["n", "budget", "select_on"]
    assert tidied["select_on"].tolist() == ["dev", "dev", "test", "dev"]


def test_the_compact_view_is_part_of_the_full_tuned_view():
    assert set(COMPACT_COLUMNS) <= set(TUNED_COLUMNS)
    for view in (CONFIG_COLUMNS, COMPACT_COLUMNS, TUNED_COLUMNS):
        assert len(view) == len(set(view)), view
        assert view[:3] == ["rank", "task", "variant"]
    assert set(OPTIONAL) <= set(CONFIG_COLUMNS) | set(TUNED_COLUMNS)


def test_every_view_shows_the_trainable_parameters_beside_the_score():
    for view in (CONFIG_COLUMNS, COMPACT_COLUMNS, TUNED_COLUMNS):
        score = view.index("mean_x100")
        assert view[score + 1 : score + 3] == ["trainable_params", "pct_trainable"], view
