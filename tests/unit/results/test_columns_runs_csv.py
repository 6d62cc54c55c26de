"""bench.results.columns: the runs CSV's columns, and those an older CSV lacks."""

from bench.analysis.runs_table import NAMED_BY
from bench.results.columns import ADDED_COLUMNS, RUNS_COLUMNS


def test_every_column_is_named_once():
    assert len(RUNS_COLUMNS) == len(set(RUNS_COLUMNS))
    assert len(ADDED_COLUMNS) == len(set(ADDED_COLUMNS))


def test_the_added_columns_are_runs_columns():
    assert set(ADDED_COLUMNS) <= set(RUNS_COLUMNS), sorted(set(ADDED_COLUMNS) - set(RUNS_COLUMNS))


def test_what_places_and_identifies_a_run_is_in_every_csv_old_or_new():
    """A reader places a row by NAMED_BY, keeps the latest (timestamp) per config hash, and reads its seed,
    score and folder: only columns that are not among the added ones, so an older CSV has them too."""
    needed = {*NAMED_BY, "timestamp", "seed", "score", "config_hash", "run_dir"}
    assert needed <= set(RUNS_COLUMNS)
    assert not needed & set(ADDED_COLUMNS)
