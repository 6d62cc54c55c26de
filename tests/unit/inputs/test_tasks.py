"""Task specs and loading: GLUE TSV fixtures, tabular local files, the Hub path (monkeypatched), errors."""

import shutil
from dataclasses import replace

import datasets
import pytest
from helpers.paths import FIXTURES
from omegaconf import OmegaConf

from bench.config.schemas import TaskConfig
from bench.config.store import CONF_DIR as CONF
from bench.inputs.metrics import metric_names
from bench.inputs.tasks import load_task
from bench.run.checks import check_task

GLUE = FIXTURES / "glue"
LOCAL = FIXTURES / "local"
GLUE_TASKS = ["cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte", "wnli"]
VADER_TASKS = ["rt_polarity", "rt_rating", "tweet_polarity", "amazon_polarity", "nyt_polarity"]
PACKAGED_TASKS = ["snli", "trec", "newsgroups", "health_news", "hedge"]


def task_cfg(name: str, **overrides) -> TaskConfig:
    """conf/task/<name>.yaml merged into the schema, as Hydra does, with overrides."""
    raw = OmegaConf.load(CONF / "task" / f"{name}.yaml")
    assert list(raw.pop("defaults")) == ["task_schema", "_self_"]
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(TaskConfig), raw, overrides))


# -- the config files --------------------------------------------------------------------------------

SPECS = {  # name: (text fields, num_labels, metrics, main metric, eval splits)
    "cola": (["sentence"], 2, ["matthews_correlation"], "matthews_correlation", {"validation": ""}),
    "sst2": (["sentence"], 2, ["accuracy"], "accuracy", {"validation": ""}),
    "mrpc": (["sentence1", "sentence2"], 2, ["accuracy", "f1"], "accuracy", {"validation": ""}),
    "qqp": (["question1", "question2"], 2, ["accuracy", "f1"], "accuracy", {"validation": ""}),
    "stsb": (["sentence1", "sentence2"], 1, ["pearson", "spearmanr"], "pearson", {"validation": ""}),
    "mnli": (
        ["premise", "hypothesis"],
        3,
        ["accuracy"],
        "accuracy_m",
        {"validation_matched": "m", "validation_mismatched": "mm"},
    ),
    "qnli": (["question", "sentence"], 2, ["accuracy"], "accuracy", {"validation": ""}),
    "rte": (["sentence1", "sentence2"], 2, ["accuracy"], "accuracy", {"validation": ""}),
    "wnli": (["sentence1", "sentence2"], 2, ["accuracy"], "accuracy", {"validation": ""}),
    "rt_polarity": (["sentence"], 2, ["accuracy", "f1"], "accuracy", {"test": ""}),
    "rt_rating": (["sentence"], 1, ["pearson", "spearmanr"], "pearson", {"test": ""}),
    "tweet_polarity": (["sentence"], 2, ["accuracy", "f1"], "accuracy", {"test": ""}),
    "amazon_polarity": (["sentence"], 2, ["accuracy", "f1"], "accuracy", {"test": ""}),
    "nyt_polarity": (["sentence"], 2, ["accuracy", "f1"], "accuracy", {"test": ""}),
    "snli": (["premise", "hypothesis"], 3, ["accuracy"], "accuracy", {"test": ""}),
    "trec": (["question"], 6, ["accuracy"], "accuracy", {"test": ""}),
    "newsgroups": (["text"], 20, ["accuracy"], "accuracy", {"test": ""}),
    "health_news": (["text"], 16, ["accuracy"], "accuracy", {"test": ""}),
    "hedge": (["sentence"], 2, ["accuracy", "f1"], "accuracy", {"test": ""}),
}


def test_every_task_has_a_config_file():
    assert sorted(p.stem for p in (CONF / "task").glob("*.yaml")) == sorted(SPECS)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_config_files_match_the_glue_conventions(name):
    cfg = task_cfg(name)
    fields, num_labels, metrics, main, splits = SPECS[name]
    assert (cfg.name, cfg.text_fields, cfg.num_labels, cfg.metrics) == (name, fields, num_labels, metrics)
    assert (cfg.main_metric, cfg.eval_splits) == (main, splits)
    source = "vader" if name in VADER_TASKS else "packaged" if name in PACKAGED_TASKS else "glue"
    assert cfg.source == source
    assert cfg.packaged_set == (name if source == "packaged" else None)
    assert cfg.dev_split == ("validation" if name in VADER_TASKS else None)  # else carved from train
    assert cfg.main_metric in metric_names(cfg)
    check_task(cfg)


def test_hydra_composes_every_task_with_the_schema(compose):
    """MNLI's eval_splits must replace, not merge with, a default (the schema leaves it mandatory)."""
    for name in SPECS:
        cfg = compose(config_name=None, overrides=[f"+task={name}"]).task
        assert OmegaConf.to_object(cfg) == task_cfg(name)
    mnli = compose(config_name=None, overrides=["+task=mnli"]).task
    assert list(mnli.eval_splits) == ["validation_matched", "validation_mismatched"]
    with pytest.raises(Exception, match="Could not override 'task.text_feild'"):
        compose(config_name=None, overrides=["+task=sst2", "task.text_feild=[x]"])
    with pytest.raises(Exception, match="Error merging override task.num_labels=two"):
        compose(config_name=None, overrides=["+task=sst2", "task.num_labels=two"])


# -- GLUE TSV files ----------------------------------------------------------------------------------

TSV = {  # name: (train labels, {eval split: labels}, (split, field, row, exact text))
    "cola": (
        [1, 1, 0, 0],
        {"validation": [1, 0, 1]},
        ("validation", "sentence", 2, '"Fred" is what they call him.'),
    ),
    "sst2": ([0, 0, 1, 1], {"validation": [1, 0]}, ("train", "sentence", 3, '"the best film of the year ')),
    "mrpc": (
        [1, 0, 1],
        {"validation": [1, 0]},
        (
            "validation",
            "sentence2",
            0,
            '" The foodservice pie business does not fit our long-term growth strategy .',
        ),
    ),
    "qqp": (
        [0, 1, 0],
        {"validation": [0, 0, 1]},
        ("train", "question1", 2, '"What causes stool color to change to yellow?'),
    ),
    "stsb": (
        [5.0, 3.8, 3.8, 2.6],
        {"validation": [5.0, 4.75, 5.0]},
        ("train", "sentence2", 1, "A man is playing a flute."),
    ),
    "mnli": (
        [1, 0, 0, 0, 2],
        {"validation_matched": [1, 2], "validation_mismatched": [2, 2, 0]},
        ("validation_mismatched", "hypothesis", 2, "We serve a meal of Florentine terrine."),
    ),
    "qnli": (
        [1, 0, 0],
        {"validation": [0, 1]},
        ("train", "question", 0, "When did the third Digimon series begin?"),
    ),
    "rte": (
        [1, 0, 0],
        {"validation": [1, 0]},
        ("validation", "sentence2", 0, "Christopher Reeve had an accident."),
    ),
    "wnli": ([1, 1, 1, 0], {"validation": [0, 1]}, ("train", "sentence2", 3, "Steve influences him hugely.")),
}


@pytest.mark.parametrize("name", GLUE_TASKS)
def test_glue_tsv_files(name):
    cfg = task_cfg(name, data_dir=str(GLUE / name))
    data = load_task(cfg, with_dev=False)
    train_labels, eval_labels, (split, column, row, text) = TSV[name]
    assert list(data.evals) == list(cfg.eval_splits)
    splits = {"train": data.train, **data.evals}
    for ds in splits.values():
        assert ds.column_names == [*cfg.text_fields, "label", "idx"]
        assert ds.features["label"].dtype == ("float32" if cfg.num_labels == 1 else "int64")
        assert ds["idx"] == list(range(len(ds)))
    assert data.train["label"] == pytest.approx(train_labels)
    assert list(eval_labels) == list(data.evals)
    for s, labels in eval_labels.items():
        assert data.evals[s]["label"] == pytest.approx(labels)
    assert splits[split][column][row] == text


def test_mrpc_header_bom_is_ignored_and_text_kept_verbatim():
    train = load_task(task_cfg("mrpc", data_dir=str(GLUE / "mrpc")), with_dev=False).train
    assert train["sentence1"][0].startswith('Amrozi accused his brother , whom he called " the witness "')


# -- tabular local files -----------------------------------------------------------------------------


@pytest.mark.parametrize("folder", ["sst2_csv", "sst2_parquet"])
@pytest.mark.parametrize("source", ["glue", "local"])
def test_csv_and_parquet(folder, source):
    data = load_task(task_cfg("sst2", source=source, data_dir=str(LOCAL / folder)), with_dev=False)
    assert data.train["sentence"] == [
        "a gripping, funny film",
        "dull and far too long",
        "NA",
        'the "best" film of the year',
    ]
    assert data.train["label"] == [1, 0, 0, 1]
    assert data.evals["validation"]["label"] == [1, 0]
    assert data.train.features["label"].dtype == "int64"


def test_jsonl_with_string_labels_and_idx():
    data = load_task(task_cfg("mnli", data_dir=str(LOCAL / "mnli_jsonl")), with_dev=False)
    assert data.train["label"] == [0, 2, 1]  # entailment, contradiction, neutral
    assert data.train["idx"] == [10, 11, 12]
    assert data.evals["validation_matched"]["label"] == [0, 2]
    assert data.evals["validation_mismatched"]["label"] == [1]
    assert data.evals["validation_mismatched"]["premise"] == ["The committee met on Tuesday."]


def test_json_regression():
    data = load_task(task_cfg("stsb", data_dir=str(LOCAL / "stsb_json")), with_dev=False)
    assert data.train["label"] == pytest.approx([5.0, 0.5, 2.6])
    assert data.train.features["label"].dtype == "float32"
    assert data.evals["validation"]["sentence2"] == ["A young child is riding a horse."]


def test_custom_local_task(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\nhello,2\nbye,0\n")
    (tmp_path / "validation.csv").write_text("text,label\nhi,1\n")
    cfg = TaskConfig(
        name="mine",
        source="local",
        data_dir=str(tmp_path),
        text_fields=["text"],
        num_labels=3,
        metrics=["accuracy"],
        main_metric="accuracy",
        eval_splits={"validation": ""},
    )
    data = load_task(cfg, with_dev=False)
    assert (data.train["text"], data.train["label"]) == (["hello", "bye"], [2, 0])
    assert data.evals["validation"]["label"] == [1]
    carved = load_task(cfg)  # the default dev set: at least one row, taken from train
    assert (len(carved.train), len(carved.dev)) == (1, 1)
    assert sorted([*carved.train["text"], *carved.dev["text"]]) == ["bye", "hello"]


# -- errors ------------------------------------------------------------------------------------------


def test_missing_file_names_the_folder_and_the_files_looked_for(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        load_task(task_cfg("mnli", data_dir=str(tmp_path)))
    msg = str(e.value)
    assert str(tmp_path) in msg and "'train'" in msg
    assert "train.tsv, train.csv, train.json, train.jsonl, train.parquet" in msg
    shutil.copy(GLUE / "mnli" / "train.tsv", tmp_path)
    with pytest.raises(FileNotFoundError, match="dev_matched.tsv, validation_matched.csv"):
        load_task(task_cfg("mnli", data_dir=str(tmp_path)))


def test_data_dir_that_is_not_a_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.*is not a folder"):
        load_task(task_cfg("sst2", data_dir=str(tmp_path / "nowhere")))


def test_missing_column_in_csv(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\nhello,1\n")
    with pytest.raises(ValueError) as e:
        load_task(task_cfg("sst2", data_dir=str(tmp_path)))
    msg = str(e.value)
    assert str(tmp_path / "train.csv") in msg
    assert "lacks column(s) sentence" in msg and "it has columns: text, label" in msg


def test_missing_column_in_tsv(tmp_path):
    (tmp_path / "train.tsv").write_text("index\tsentence1\tlabel\n0\tA.\tentailment\n")
    with pytest.raises(ValueError) as e:
        load_task(task_cfg("rte", data_dir=str(tmp_path)))
    msg = str(e.value)
    assert str(tmp_path / "train.tsv") in msg
    assert "lacks column(s) sentence2" in msg and "it has columns: index, sentence1, label" in msg


def test_out_of_range_integer_label(tmp_path):
    (tmp_path / "train.csv").write_text("sentence,label\ngood,1\nodd,3\n")
    with pytest.raises(ValueError) as e:
        load_task(task_cfg("sst2", data_dir=str(tmp_path)))
    msg = str(e.value)
    assert str(tmp_path / "train.csv") in msg
    assert "column 'label', data row 2: bad label '3'" in msg and "0..1" in msg


def test_unknown_label_string_in_tsv(tmp_path):
    shutil.copy(GLUE / "rte" / "train.tsv", tmp_path)
    (tmp_path / "dev.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\tA.\tB.\tmaybe\n")
    with pytest.raises(ValueError) as e:
        load_task(task_cfg("rte", data_dir=str(tmp_path)))
    msg = str(e.value)
    assert str(tmp_path / "dev.tsv") in msg and "column 'label'" in msg and "'maybe'" in msg
    assert "entailment, not_entailment" in msg


def test_bad_mnli_gold_label_names_the_tsv_column(tmp_path):
    for f in ("train.tsv", "dev_matched.tsv", "dev_mismatched.tsv"):
        shutil.copy(GLUE / "mnli" / f, tmp_path)
    path = tmp_path / "dev_mismatched.tsv"
    path.write_text(path.read_text().replace("\tentailment\n", "\t-\n"))
    with pytest.raises(
        ValueError, match=r"dev_mismatched.tsv, column 'gold_label', data row 3: bad label '-'"
    ):
        load_task(task_cfg("mnli", data_dir=str(tmp_path)))


def test_regression_label_that_is_not_a_number(tmp_path):
    (tmp_path / "train.csv").write_text("sentence1,sentence2,label\na,b,high\n")
    with pytest.raises(
        ValueError, match=r"train.csv, column 'label', data row 1: label 'high' is not a number"
    ):
        load_task(task_cfg("stsb", data_dir=str(tmp_path)))


def test_short_tsv_row(tmp_path):
    (tmp_path / "train.tsv").write_text("gj04\t1\t\tfine.\ngj04\t0\n")
    with pytest.raises(
        ValueError,
        match=r"train.tsv, data row 2 \(line 2\): 2 tab-separated fields, expected 4 \(as the first row\)",
    ):
        load_task(task_cfg("cola", data_dir=str(tmp_path)))


def test_config_errors():
    with pytest.raises(ValueError, match="source=local but no data folder: set task.data_dir=DIR"):
        load_task(task_cfg("sst2", source="local"))
    with pytest.raises(
        ValueError, match="unknown task source 'hub'; choose one of glue, vader, packaged, local"
    ):
        check_task(task_cfg("sst2", source="hub"))
    with pytest.raises(ValueError, match="main_metric 'accuracy' is not one of accuracy_m, accuracy_mm"):
        check_task(task_cfg("mnli", main_metric="accuracy"))
    with pytest.raises(ValueError, match="task 'x' has no text_fields"):
        check_task(TaskConfig(name="x"))


# -- the Hub (monkeypatched) -------------------------------------------------------------------------


def fake_glue(name: str, sizes: dict[str, int]) -> datasets.DatasetDict:
    """A DatasetDict shaped like nyu-mll/glue: ClassLabel labels, int32 idx, unlabeled (-1) test splits."""
    cfg = task_cfg(name)
    label = datasets.ClassLabel(names=cfg.label_names) if cfg.num_labels > 1 else datasets.Value("float32")
    features = datasets.Features(
        {
            **{f: datasets.Value("string") for f in cfg.text_fields},
            "label": label,
            "idx": datasets.Value("int32"),
        }
    )
    out = {}
    for split, n in sizes.items():
        labels = [-1] * n if split.startswith("test") else [i % max(cfg.num_labels, 2) for i in range(n)]
        rows = {f: [f"{split} {f} {i}" for i in range(n)] for f in cfg.text_fields}
        out[split] = datasets.Dataset.from_dict(
            {**rows, "label": labels, "idx": list(range(n))}, features=features
        )
    return datasets.DatasetDict(out)


@pytest.fixture
def hub(monkeypatch):
    """Replace datasets.load_dataset; returns the list of (path, config) calls."""
    calls = []

    def install(name: str, sizes: dict[str, int]):
        def load_dataset(path, config=None, **kwargs):
            calls.append((path, config))
            return fake_glue(name, sizes)

        monkeypatch.setattr(datasets, "load_dataset", load_dataset)
        return calls

    return install


def test_hub_sst2(hub):
    calls = hub("sst2", {"train": 6, "validation": 4, "test": 5})
    data = load_task(task_cfg("sst2"), with_dev=False)
    assert calls == [("nyu-mll/glue", "sst2")]
    assert data.train.column_names == ["sentence", "label", "idx"]
    assert data.train["label"] == [0, 1, 0, 1, 0, 1]
    assert data.train.features["label"].dtype == "int64" and data.train.features["idx"].dtype == "int64"
    assert list(data.evals) == ["validation"]
    assert data.evals["validation"]["sentence"][3] == "validation sentence 3"


def test_hub_mnli_uses_matched_and_mismatched_validation(hub):
    hub(
        "mnli",
        {
            "train": 6,
            "validation_matched": 3,
            "validation_mismatched": 2,
            "test_matched": 2,
            "test_mismatched": 2,
        },
    )
    data = load_task(task_cfg("mnli"), with_dev=False)
    assert data.train["label"] == [0, 1, 2, 0, 1, 2]
    assert {s: len(ds) for s, ds in data.evals.items()} == {
        "validation_matched": 3,
        "validation_mismatched": 2,
    }
    assert data.evals["validation_mismatched"]["hypothesis"] == [
        "validation_mismatched hypothesis 0",
        "validation_mismatched hypothesis 1",
    ]


def test_hub_stsb_regression(hub):
    hub("stsb", {"train": 4, "validation": 2, "test": 2})
    data = load_task(task_cfg("stsb"), with_dev=False)
    assert data.train.features["label"].dtype == "float32"
    assert data.train["label"] == [0.0, 1.0, 0.0, 1.0]


def test_hub_missing_split(hub):
    hub("sst2", {"train": 4, "test": 2})
    with pytest.raises(
        ValueError, match="nyu-mll/glue \\(sst2\\) has no split 'validation'; it has: train, test"
    ):
        load_task(task_cfg("sst2"))


def test_hub_failure_says_network_or_data_dir(monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'nyu-mll/glue' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(RuntimeError) as e:
        load_task(task_cfg("mnli"))
    msg = str(e.value)
    assert "'nyu-mll/glue' (config 'mnli')" in msg and "Couldn't reach" in msg
    assert "needs network access to the Hub" in msg
    assert "task.data_dir=DIR" in msg and "train.tsv, dev_matched.tsv, dev_mismatched.tsv" in msg


def test_subsampling_is_seeded_and_keeps_order(hub):
    hub("sst2", {"train": 40, "validation": 10})
    a = load_task(task_cfg("sst2", max_train_samples=8, max_eval_samples=3), with_dev=False)
    b = load_task(task_cfg("sst2", max_train_samples=8, max_eval_samples=3), with_dev=False)
    c = load_task(task_cfg("sst2", max_train_samples=8, split_seed=1), with_dev=False)
    assert len(a.train) == 8 and len(a.evals["validation"]) == 3
    assert a.train["idx"] == b.train["idx"] == sorted(a.train["idx"])
    assert a.train["idx"] != c.train["idx"]
    assert a.train["sentence"] == [f"train sentence {i}" for i in a.train["idx"]]
    assert len(load_task(task_cfg("sst2", max_train_samples=100), with_dev=False).train) == 40
    with pytest.raises(ValueError, match="task.max_train_samples must be >= 1 or null, got 0"):
        check_task(task_cfg("sst2", max_train_samples=0))


# -- a new GLUE-format task is one config file ------------------------------------------------------


def test_tsv_layout_comes_from_the_task_config(tmp_path):
    (tmp_path / "train.tsv").write_text("id\tq\tgold\n0\tIs it?\tyes\n1\tNo way\tno\n")
    (tmp_path / "dev.tsv").write_text("id\tq\tgold\n0\tMaybe\tno\n")
    cfg = TaskConfig(
        name="mine",
        text_fields=["question"],
        num_labels=2,
        label_names=["no", "yes"],
        metrics=["accuracy"],
        main_metric="accuracy",
        eval_splits={"validation": ""},
        data_dir=str(tmp_path),
        tsv_columns={"question": "q", "label": "gold"},
    )
    data = load_task(cfg, with_dev=False)
    assert (data.train["question"], data.train["label"]) == (["Is it?", "No way"], [1, 0])
    assert data.evals["validation"]["label"] == [0]
    headerless = {**vars(cfg), "tsv_columns": {"question": "q", "label": 2}, "tsv_header": False}
    with pytest.raises(ValueError, match=r"tsv_header is false, so tsv_columns \{'question': 'q'\} must be"):
        load_task(TaskConfig(**headerless))
    with pytest.raises(ValueError, match=r"tsv_columns \['label'\] must name each of text_fields"):
        load_task(TaskConfig(**{**vars(cfg), "tsv_columns": {"label": "gold"}}))


def test_tasks_without_tsv_columns_read_no_tsv(tmp_path):
    (tmp_path / "train.tsv").write_text("sentence\tlabel\nfine\t1\n")
    cfg = replace(task_cfg("sst2", data_dir=str(tmp_path)), tsv_columns={})
    with pytest.raises(FileNotFoundError, match="looked for train.csv, train.json"):
        load_task(cfg)


# -- the dev set ---------------------------------------------------------------------------------------


def test_glue_dev_set_is_carved_from_train_seeded_and_disjoint(hub):
    hub("sst2", {"train": 20, "validation": 4, "test": 5})
    data = load_task(task_cfg("sst2", dev_size=0.25))
    assert (len(data.train), len(data.dev), len(data.evals["validation"])) == (15, 5, 4)
    assert not set(data.train["idx"]) & set(data.dev["idx"])
    assert sorted([*data.train["idx"], *data.dev["idx"]]) == list(range(20))
    again = load_task(task_cfg("sst2", dev_size=0.25))
    other = load_task(task_cfg("sst2", dev_size=0.25, split_seed=1))
    assert again.dev["idx"] == data.dev["idx"] != other.dev["idx"]
    assert len(load_task(task_cfg("sst2", dev_size=3)).dev) == 3  # a count


def test_dev_set_is_carved_before_train_is_subsampled(hub):
    """max_train_samples never moves an example between train and dev."""
    hub("sst2", {"train": 20, "validation": 4, "test": 5})
    full = load_task(task_cfg("sst2", dev_size=5))
    small = load_task(task_cfg("sst2", dev_size=5, max_train_samples=6, max_eval_samples=2))
    assert set(small.train["idx"]) <= set(full.train["idx"])
    assert set(small.dev["idx"]) <= set(full.dev["idx"]) and len(small.dev) == 2


@pytest.mark.parametrize("size", [0, -1, 20, 25])
def test_dev_size_that_leaves_no_train_or_no_dev_is_refused(hub, size):
    hub("sst2", {"train": 20, "validation": 4, "test": 5})
    with pytest.raises(ValueError, match=f"task.dev_size={size}"):  # a count <= 0: the check; else the carve
        check_task(task_cfg("sst2", dev_size=size))
        load_task(task_cfg("sst2", dev_size=size))


def test_dev_split_must_not_be_a_test_split():
    with pytest.raises(ValueError, match="dev_split 'test' must be a source split other than the test"):
        check_task(task_cfg("rt_polarity", dev_split="test"))


# -- bad data files ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("train.tsv", b"", r"train.tsv is empty: task 'sst2' needs its 'train' examples"),
        ("train.tsv", b"sentence\tlabel\n", r"train.tsv has no examples \(a header only\)"),
        (
            "train.tsv",
            b"sentence\tlabel\ncaf\xe9\t1\n",
            r"train.tsv is not UTF-8 text: byte b'\\xe9' at offset 18",
        ),
        (
            "train.csv",
            b"sentence,label\ncaf\xe9,1\n",
            r"train.csv is not UTF-8 text: byte b'\\xe9' at offset 18",
        ),
    ],
)
def test_a_bad_data_file_is_named_with_what_is_wrong(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    (tmp_path / name.replace("train", "dev" if name.endswith(".tsv") else "validation")).write_text(
        "sentence,label\nhi,1\n".replace(",", "\t" if name.endswith(".tsv") else ",")
    )
    with pytest.raises(ValueError, match=message):
        load_task(task_cfg("sst2", data_dir=str(tmp_path)))
