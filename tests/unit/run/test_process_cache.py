"""Work shared by the runs of one process: the task, its tokenized splits, the tokenizer and the base model
are loaded once, and each run gets exactly what it would have loaded itself."""

import json

import pytest
import torch
from helpers.runs import tiny_run
from omegaconf import OmegaConf

from bench.config.schemas import TaskConfig
from bench.inputs.models import load_model, model_config
from bench.run import process_cache
from bench.run.spec import make_dataclass

TINY = model_config("tiny")


def rt_polarity(compose, *overrides: str) -> TaskConfig:
    cfg = compose(["task=rt_polarity", *overrides])
    return make_dataclass(TaskConfig, OmegaConf.to_container(cfg.task, resolve=True))


@pytest.fixture(autouse=True)
def empty_caches():
    process_cache.clear()
    yield
    process_cache.clear()


def test_the_base_model_loads_once_and_every_run_gets_its_own_copy(monkeypatch):
    loads = []

    def counted(*args, **kwargs):
        loads.append(args)
        return load_model(*args, **kwargs)

    monkeypatch.setattr(process_cache, "load_model", counted)
    first = process_cache.base_model(TINY, 2, seed=0)
    with torch.no_grad():
        next(first.parameters()).add_(1.0)  # a run trains its model in place
    second = process_cache.base_model(TINY, 2, seed=0)
    fresh = load_model(TINY, 2, seed=0)
    assert len(loads) == 1 and second is not first
    for (name, a), b in zip(second.state_dict().items(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    process_cache.base_model(TINY, 2, seed=1)  # another head: loaded
    process_cache.base_model(TINY, 3, seed=1)
    assert len(loads) == 3


def test_a_model_with_loading_options_is_loaded_each_time(monkeypatch):
    loads = []
    monkeypatch.setattr(process_cache, "load_model", lambda *a, **kw: loads.append(kw) or load_model(*a))
    process_cache.base_model(TINY, 2, seed=0, torch_dtype=torch.float32)
    process_cache.base_model(TINY, 2, seed=0, torch_dtype=torch.float32)
    assert loads == [{"seed": 0, "torch_dtype": torch.float32}] * 2


def test_tokenized_splits_are_reused_for_the_same_data_tokenizer_and_length(compose):
    task = process_cache.task(rt_polarity(compose, "task.max_train_samples=20"), with_dev=True)
    tokenizer = process_cache.tokenizer(TINY)
    fields = ["sentence"]
    a = process_cache.examples(task.train, tokenizer, fields, 16, False)
    assert process_cache.examples(task.train, tokenizer, fields, 16, False) is a
    shorter = process_cache.examples(task.train, tokenizer, fields, 8, False)
    assert shorter is not a and max(len(e["input_ids"]) for e in shorter) == 8
    dev = process_cache.examples(task.dev, tokenizer, fields, 16, False)
    assert {e["idx"] for e in dev}.isdisjoint(e["idx"] for e in a)


def test_the_task_is_loaded_once_per_config(compose):
    first = process_cache.task(rt_polarity(compose, "task.max_train_samples=20"), with_dev=True)
    assert process_cache.task(rt_polarity(compose, "task.max_train_samples=20"), with_dev=True) is first
    other = process_cache.task(rt_polarity(compose, "task.max_train_samples=10"), with_dev=True)
    assert len(other.train) == 10 and len(first.train) == 20


def test_a_second_run_in_the_process_computes_what_the_first_did(compose, tmp_path):
    """The same config twice in one process (the second one from the caches): the same numbers."""
    scores = []
    for name in ("first", "second"):
        run_dir = tiny_run(compose, tmp_path / name)
        scores.append(json.loads((run_dir / "metrics.json").read_text())["best"])
    assert scores[0] == scores[1]


def test_the_cache_keeps_the_latest_entries_only():
    lru = process_cache.Lru(2)
    made = []
    for key in ["a", "b", "a", "c", "b"]:
        lru.get(key, lambda k=key: made.append(k) or k)
    assert made == ["a", "b", "c", "b"]  # "b" was the oldest when "c" came
