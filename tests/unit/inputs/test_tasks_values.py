"""What a task's data may hold: regression targets finite and inside the task's declared range, rows of one
width, fields the csv module can read; each refusal names the file, the row and the value."""

from __future__ import annotations

from dataclasses import replace

import pytest
from omegaconf import OmegaConf

from bench.config.hashing import config_hash
from bench.config.schemas import TaskConfig
from bench.config.store import group_config
from bench.inputs.delimited import FIELD_LIMIT
from bench.inputs.tasks import load_task


def task(name: str, data_dir, **overrides) -> TaskConfig:
    return replace(group_config("task", name, TaskConfig), data_dir=str(data_dir), **overrides)


def stsb_csv(folder, *scores: str) -> TaskConfig:
    """STS-B as CSV files in ``folder``: train with one row per score, a valid validation split."""
    rows = "".join(f"a{n},b{n},{s}\n" for n, s in enumerate(scores))
    (folder / "train.csv").write_text(f"sentence1,sentence2,label\n{rows}")
    (folder / "validation.csv").write_text("sentence1,sentence2,label\nx,y,2.5\n")
    return task("stsb", folder)


def test_the_regression_tasks_declare_their_range():
    assert group_config("task", "stsb", TaskConfig).label_range == [0, 5]
    assert group_config("task", "rt_rating", TaskConfig).label_range == [-4, 4]
    assert group_config("task", "sst2", TaskConfig).label_range is None


@pytest.mark.parametrize(
    ("score", "message"),
    [
        ("nan", r"train.csv, column 'label', data row 2: label 'nan' is not a finite number"),
        ("inf", r"train.csv, column 'label', data row 2: label 'inf' is not a finite number"),
        ("17.5", r"data row 2: label '17.5' is outside task 'stsb''s range \[0, 5\] \(task.label_range\)"),
        ("-0.5", r"data row 2: label '-0.5' is outside task 'stsb''s range \[0, 5\]"),
    ],
)
def test_a_target_that_is_not_finite_or_out_of_range_is_refused(tmp_path, score, message):
    cfg = stsb_csv(tmp_path, "3.8", score)
    with pytest.raises(ValueError, match=message) as e:
        load_task(cfg, with_dev=False)
    assert str(tmp_path / "train.csv") in str(e.value)


def test_the_range_bounds_are_inclusive_and_an_undeclared_range_takes_any_finite_target(tmp_path):
    assert load_task(stsb_csv(tmp_path, "0", "5.0"), with_dev=False).train["label"] == [0.0, 5.0]
    unbounded = replace(stsb_csv(tmp_path, "17.5"), label_range=None)
    assert load_task(unbounded, with_dev=False).train["label"] == [17.5]
    with pytest.raises(ValueError, match="label 'nan' is not a finite number"):
        load_task(replace(stsb_csv(tmp_path, "nan"), label_range=None), with_dev=False)


def test_a_glue_tsv_score_out_of_range_names_the_file_and_its_column(tmp_path):
    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
    row = "0\tmain\tf\t2012\t1\tnone\tnone\tA plane.\tA jet.\t{}\n"
    (tmp_path / "train.tsv").write_text(header + row.format("4.2") + row.format("NaN"))
    (tmp_path / "dev.tsv").write_text(header + row.format("1.0"))
    with pytest.raises(
        ValueError, match=r"train.tsv, column 'score', data row 2: label 'NaN' is not a finite"
    ):
        load_task(task("stsb", tmp_path), with_dev=False)


def test_vader_ratings_are_held_to_the_range_too(tmp_path):
    lines = "".join(f"{n}\t{(n % 9) - 4}.0\tsentence {n}\n" for n in range(30))
    (tmp_path / "movieReviewSnippets_GroundTruth.txt").write_text(lines)
    assert len(load_task(task("rt_rating", tmp_path)).train) == 24
    with pytest.raises(ValueError, match=r"vader corpus movieReviewSnippets, split 'train', data row \d+: "):
        load_task(task("rt_rating", tmp_path, label_range=[0, 4]))


# -- rows and fields --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "train.tsv",
            "sentence\tlabel\nfine\t1\nodd\t0\textra\n",
            r"train.tsv, data row 2 \(line 3\): 3 tab-separated fields, expected 2 \(as the header\)",
        ),
        (  # pandas would make the first column an index and shift the others
            "train.csv",
            "sentence,label\na fine film,1,extra\ndull,0\n",
            r"train.csv, data row 1 \(line 2\): 3 comma-separated fields, expected 2 \(as the header\)",
        ),
        (
            "train.csv",
            "sentence,label\nfine,1\ndull,0,\n",
            r"train.csv, data row 2 \(line 3\): 3 comma-separated fields, expected 2",
        ),
        (  # a quote never closed runs to the end of the file: one field
            "train.csv",
            'sentence,label\n"fine,1\ndull,0\n',
            r"train.csv, data row 1 \(line 3\): 1 comma-separated fields, expected 2",
        ),
    ],
)
def test_a_row_with_a_field_too_many_or_too_few_is_refused(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    other = "dev.tsv" if name.endswith(".tsv") else "validation.csv"
    (tmp_path / other).write_text(
        "sentence,label\nhi,1\n".replace(",", "\t" if name.endswith(".tsv") else ",")
    )
    with pytest.raises(ValueError, match=message):
        load_task(task("sst2", tmp_path), with_dev=False)


def test_a_headerless_tsv_row_must_match_the_first(tmp_path):
    (tmp_path / "train.tsv").write_text("gj04\t1\t\tfine.\ngj04\t0\t\tbad.\textra\n")
    with pytest.raises(
        ValueError, match=r"data row 2 \(line 2\): 5 tab-separated fields, expected 4 \(as the first"
    ):
        load_task(task("cola", tmp_path), with_dev=False)


@pytest.mark.parametrize("suffix", ["tsv", "csv"])
def test_a_field_over_the_parsers_limit_names_the_file_row_and_limit(tmp_path, suffix):
    sep = "\t" if suffix == "tsv" else ","
    long = "x" * (FIELD_LIMIT + 10)
    (tmp_path / f"train.{suffix}").write_text(f"sentence{sep}label\nfine{sep}1\n{long}{sep}0\n")
    with pytest.raises(ValueError) as e:
        load_task(task("sst2", tmp_path), with_dev=False)
    message = str(e.value)
    assert message.startswith(
        f"{tmp_path / f'train.{suffix}'}, data row 2 (line 3): a field longer than 131,072 "
    )
    assert "the csv module's limit" in message and "\n" not in message


def test_csv_fields_are_read_as_written(tmp_path):
    (tmp_path / "train.csv").write_text('idx,sentence,label\n7,1.50,1.0\n8,"NA, or null",0\n')
    (tmp_path / "validation.csv").write_text("sentence,label\nhi,1\n")
    train = load_task(task("sst2", tmp_path), with_dev=False).train
    assert (train["sentence"], train["label"], train["idx"]) == (["1.50", "NA, or null"], [1, 0], [7, 8])
    (tmp_path / "train.csv").write_text("idx,sentence,label\nseven,fine,1\n")
    with pytest.raises(
        ValueError, match=r"train.csv, column 'idx', data row 1: idx 'seven' is not an integer"
    ):
        load_task(task("sst2", tmp_path), with_dev=False)


def test_a_declared_range_changes_no_config_hash(compose):
    """label_range is a check on the data, not a setting: runs from before it keep their hash."""
    declared, unset = (
        OmegaConf.to_container(compose(["task=stsb", *extra]), resolve=True)
        for extra in ([], ["task.label_range=null"])
    )
    assert declared["task"]["label_range"] == [0.0, 5.0] and unset["task"]["label_range"] is None
    assert config_hash(declared) == config_hash(unset)
