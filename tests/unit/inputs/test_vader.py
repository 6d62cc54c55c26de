"""The vaderSentiment sdist source: real download (once per session), checksum, parsing, labels, splits."""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.paths import ROOT
from omegaconf import OmegaConf

from bench.config.schemas import TaskConfig
from bench.inputs import packaged, vader
from bench.inputs.tasks import load_task

CONF = ROOT / "conf" / "task"
ROWS = {
    "movieReviewSnippets": 10605,
    "tweets": 4200,
    "amazonReviewSnippets": 3708,
    "nytEditorialSnippets": 5190,
}


def task_cfg(name: str, **overrides) -> TaskConfig:
    raw = OmegaConf.load(CONF / f"{name}.yaml")
    raw.pop("defaults")
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(TaskConfig), raw, overrides))


@pytest.fixture(scope="session")
def vader_cache(tmp_path_factory) -> Path:
    """A cache filled by one real download from PyPI (through pip) for the whole session."""
    cache = tmp_path_factory.mktemp("peft-bench-cache")
    for corpus in vader.CORPORA:
        vader.corpus_file(corpus, cache)
    return cache


@pytest.fixture
def cached(vader_cache, monkeypatch) -> Path:
    """The filled cache as $PEFT_BENCH_CACHE; any further download attempt fails the test."""
    monkeypatch.setenv("PEFT_BENCH_CACHE", str(vader_cache))
    monkeypatch.setattr(packaged, "_pip_download", lambda archive, dest: pytest.fail("unexpected download"))
    return vader_cache


def test_download_is_verified_and_extracted(vader_cache):
    sdist = vader_cache / vader.SDIST
    assert hashlib.sha256(sdist.read_bytes()).hexdigest() == vader.SDIST_SHA256
    names = sorted(p.name for p in vader_cache.iterdir() if not p.name.startswith("."))
    expected = sorted([vader.SDIST, "vader.lock", *(f"{c}_GroundTruth.txt" for c in vader.CORPORA)])
    assert names == expected
    assert not [p for p in vader_cache.iterdir() if p.name.startswith(".")]  # no temp files left behind


@pytest.mark.parametrize("corpus", sorted(ROWS))
def test_row_counts_and_parsing(cached, corpus):
    ids, ratings, texts = vader.read_corpus(corpus)
    assert len(ids) == len(ratings) == len(texts) == ROWS[corpus]
    assert len(set(ids)) == ROWS[corpus]
    assert ratings.min() >= -4 and ratings.max() <= 4
    assert all(t and t == t.strip() for t in texts)


def test_first_and_last_rows(cached):
    ids, ratings, texts = vader.read_corpus("tweets")
    assert (ids[0], ratings[0]) == ("1", pytest.approx(2.726315789))
    assert texts[0].startswith("Somehow I was blessed with some really amazing friends in my life")
    assert (ids[-1], ratings[-1], texts[-1]) == (
        "4200",
        pytest.approx(0.2),
        "Execute like lightning not like wind",
    )
    ids, _, texts = vader.read_corpus("movieReviewSnippets")
    assert "Münch's genuine insight" in texts[ids.index("264")]  # UTF-8, not mojibake
    assert vader.read_corpus("amazonReviewSnippets")[0][:2] == ["1_1", "1_2"]


def test_unknown_corpus():
    with pytest.raises(
        ValueError, match="unknown vader corpus 'imdb'; available: movieReviewSnippets, tweets"
    ):
        vader.corpus_file("imdb")


def test_split_indices_are_stable_disjoint_and_80_10_10():
    parts = vader.split_indices(10, 0)
    # numpy's PCG64 permutation is platform-stable: these values must never change.
    assert {k: v.tolist() for k, v in parts.items()} == {
        "train": [0, 1, 2, 3, 5, 7, 8, 9],
        "validation": [4],
        "test": [6],
    }
    parts = vader.split_indices(ROWS["movieReviewSnippets"], 0)
    assert [len(v) for v in parts.values()] == [8485, 1060, 1060]
    assert np.array_equal(np.sort(np.concatenate(list(parts.values()))), np.arange(10605))


def test_rt_polarity_labels_and_splits(cached):
    _, ratings, texts = vader.read_corpus("movieReviewSnippets")
    data = load_task(task_cfg("rt_polarity"))
    assert list(data.evals) == ["test"]
    train, val, test = data.train, data.dev, data.evals["test"]
    assert train.column_names == ["sentence", "label", "idx"]
    for ds in (train, val, test):
        idx = np.array(ds["idx"])
        assert np.all(np.abs(ratings[idx]) >= 0.5)  # the neutral band is gone
        assert ds["label"] == (ratings[idx] > 0).astype(int).tolist()
        assert ds["sentence"][:5] == [texts[i] for i in idx[:5]]
    assert not (set(train["idx"]) & set(val["idx"]) or set(train["idx"]) & set(test["idx"]))
    assert not set(val["idx"]) & set(test["idx"])
    kept = np.abs(ratings) >= 0.5
    parts = vader.split_indices(len(ratings), 0)
    assert len(train) == kept[parts["train"]].sum() and len(val) == kept[parts["validation"]].sum()
    assert len(test) == kept[parts["test"]].sum()
    assert 0.4 < np.mean(train["label"]) < 0.6


def test_splits_are_repeatable_and_depend_on_split_seed(cached):
    a = load_task(task_cfg("rt_polarity")).evals["test"]["idx"]
    b = load_task(task_cfg("rt_polarity")).evals["test"]["idx"]
    c = load_task(task_cfg("rt_polarity", split_seed=1)).evals["test"]["idx"]
    assert a == b
    assert a != c and len(set(a) & set(c)) < len(a) // 2


def test_dev_is_the_validation_part_and_test_the_test_part(cached):
    data = load_task(task_cfg("tweet_polarity"))
    train, dev, test = (set(d["idx"]) for d in (data.train, data.dev, data.evals["test"]))
    assert not (train & dev or train & test or dev & test)
    parts = vader.split_indices(4200, 0)
    assert dev <= set(parts["validation"].tolist()) and test <= set(parts["test"].tolist())
    assert data.evals["test"].features["label"].dtype == "int64"
    assert load_task(task_cfg("tweet_polarity"), with_dev=False).dev is None


def test_a_test_fraction_gives_a_larger_test_part_and_max_test_samples_caps_it(cached):
    sizes = {"max_eval_samples": 300, "max_test_samples": 1000}
    data = load_task(task_cfg("tweet_polarity", test_fraction=0.4, **sizes))
    parts = vader.split_indices(4200, 0, 0.4)
    train, dev, test = (set(d["idx"]) for d in (data.train, data.dev, data.evals["test"]))
    assert len(test) == 1000 and len(dev) == 300 and not (train & dev or train & test or dev & test)
    assert test <= set(parts["test"].tolist()) and train <= set(parts["train"].tolist())
    whole = load_task(task_cfg("tweet_polarity", test_fraction=0.4)).evals["test"]
    assert len(whole) > 1000 > len(load_task(task_cfg("tweet_polarity")).evals["test"])


def test_rt_rating_is_regression_on_every_row_of_the_split(cached):
    _, ratings, _ = vader.read_corpus("movieReviewSnippets")
    val = load_task(task_cfg("rt_rating")).evals["test"]
    assert val.features["label"].dtype == "float32"
    assert val["idx"] == vader.split_indices(len(ratings), 0)["test"].tolist()
    assert np.allclose(val["label"], ratings[val["idx"]], atol=1e-6)


@pytest.mark.parametrize("name", ["tweet_polarity", "amazon_polarity", "nyt_polarity"])
def test_other_polarity_tasks(cached, name):
    data = load_task(task_cfg(name, max_train_samples=100, max_eval_samples=50))
    assert (len(data.train), len(data.dev), len(data.evals["test"])) == (100, 50, 50)
    assert set(data.train["label"]) == {0, 1}


def test_data_dir_is_used_as_the_cache(vader_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("PEFT_BENCH_CACHE", str(tmp_path / "empty"))
    shutil.copy(vader_cache / vader.SDIST, tmp_path)
    monkeypatch.setattr(packaged, "_pip_download", lambda archive, dest: pytest.fail("unexpected download"))
    data = load_task(task_cfg("nyt_polarity", data_dir=str(tmp_path), max_train_samples=10))
    assert len(data.train) == 10
    assert (tmp_path / "nytEditorialSnippets_GroundTruth.txt").exists()


def test_offline_without_cache_says_what_to_run(tmp_path, monkeypatch):
    def no_network(archive, dest):
        return subprocess.CompletedProcess(
            [], 1, "", "ERROR: Could not find a version that satisfies vaderSentiment"
        )

    monkeypatch.setattr(packaged, "_pip_download", no_network)
    with pytest.raises(RuntimeError) as e:
        vader.corpus_file("tweets", tmp_path)
    msg = str(e.value)
    assert "could not download vaderSentiment==3.3.2 with pip (no network?)" in msg
    assert "Could not find a version" in msg
    assert "python -m pip download --no-deps --no-binary :all: vaderSentiment==3.3.2 -d ." in msg
    assert f"copy vaderSentiment-3.3.2.tar.gz (sha256 {vader.SDIST_SHA256}) into {tmp_path}/" in msg
    assert "PEFT_BENCH_CACHE" in msg


def test_corrupt_cache_is_deleted_with_a_checksum_error(tmp_path, monkeypatch):
    monkeypatch.setattr(packaged, "_pip_download", lambda archive, dest: pytest.fail("unexpected download"))
    (tmp_path / vader.SDIST).write_bytes(b"not a tarball")
    bad = hashlib.sha256(b"not a tarball").hexdigest()
    with pytest.raises(
        RuntimeError, match=f"has sha256 {bad}, expected {vader.SDIST_SHA256}; the corrupt file"
    ):
        vader.corpus_file("tweets", tmp_path)
    assert not (tmp_path / vader.SDIST).exists()
    assert not (tmp_path / "tweets_GroundTruth.txt").exists()


def test_parallel_workers_share_one_cache(vader_cache, tmp_path):
    """Four processes extract into one empty cache at once; all read the same complete corpus."""
    shutil.copy(vader_cache / vader.SDIST, tmp_path)
    code = (
        "import sys; from bench.inputs import vader; print(len(vader.read_corpus('tweets', sys.argv[1])[0]))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env
        )
        for _ in range(4)
    ]
    assert [p.communicate(timeout=60)[0].strip() for p in procs] == ["4200"] * 4
    assert all(p.returncode == 0 for p in procs)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
