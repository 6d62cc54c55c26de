"""Which of the user's files a task reads (bench.inputs.tasks.data_files): those it loads, by split;
none for the Hub and for the packaged vader corpora."""

from __future__ import annotations

from dataclasses import replace

from helpers.paths import FIXTURES
from omegaconf import OmegaConf

from bench.config.schemas import TaskConfig
from bench.config.store import CONF_DIR
from bench.inputs.tasks import data_files, load_task


def task_cfg(name: str, **overrides) -> TaskConfig:
    raw = OmegaConf.load(CONF_DIR / "task" / f"{name}.yaml")
    raw.pop("defaults")
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(TaskConfig), raw, overrides))


def test_a_glue_task_reads_its_tsv_files_and_mnli_both_dev_sets():
    sst2 = task_cfg("sst2", data_dir=str(FIXTURES / "glue" / "sst2"))
    assert data_files(sst2) == {
        "train": FIXTURES / "glue/sst2/train.tsv",
        "validation": FIXTURES / "glue/sst2/dev.tsv",
    }
    mnli = task_cfg("mnli", data_dir=str(FIXTURES / "glue" / "mnli"))
    assert {s: p.name for s, p in data_files(mnli).items()} == {
        "train": "train.tsv",
        "validation_matched": "dev_matched.tsv",
        "validation_mismatched": "dev_mismatched.tsv",
    }


def test_local_files_and_a_dev_split_only_when_the_dev_set_is_read(tmp_path):
    folder = FIXTURES / "local" / "sst2_csv"
    cfg = task_cfg("sst2", source="local", data_dir=str(folder), tsv_columns={})
    assert {s: p.name for s, p in data_files(cfg).items()} == {
        "train": "train.csv",
        "validation": "validation.csv",
    }
    (tmp_path / "train.csv").write_bytes((folder / "train.csv").read_bytes())
    (tmp_path / "test.csv").write_bytes((folder / "validation.csv").read_bytes())
    (tmp_path / "validation.csv").write_bytes((folder / "validation.csv").read_bytes())
    split = replace(cfg, data_dir=str(tmp_path), eval_splits={"test": ""}, dev_split="validation")
    assert list(data_files(split)) == ["train", "test", "validation"]
    assert list(data_files(split, with_dev=False)) == ["train", "test"]
    assert sorted(load_task(split).held_out()) == ["dev", "test"]  # the files it lists are those it reads


def test_the_hub_and_the_vader_corpora_are_no_users_files(tmp_path):
    assert data_files(task_cfg("sst2")) == {}
    assert data_files(task_cfg("rt_polarity")) == {}
    assert (
        data_files(task_cfg("rt_polarity", data_dir=str(tmp_path))) == {}
    )  # the sdist, fixed by its checksum


def test_a_missing_file_is_left_to_the_loader_to_name(tmp_path):
    (tmp_path / "train.tsv").write_text("sentence\tlabel\nok\t1\n")
    assert list(data_files(task_cfg("sst2", data_dir=str(tmp_path)))) == ["train"]
    assert data_files(task_cfg("sst2", data_dir=str(tmp_path / "nowhere"))) == {}
