"""Shared fixtures: a tiny random BERT classifier and its tokenizer (offline, seconds), Hydra's compose,
torch on one thread, offline W&B, and a results folder with hand-checked runs.

Plain functions shared by several test modules live in tests/helpers/ (imported as ``helpers``); this
file holds fixtures only and is never imported by name.
"""

from pathlib import Path

import pytest
import torch
from helpers.results import write_results

from bench.config import store
from bench.inputs.models import load_tokenizer, model_config, tiny_model
from variants.base import Targets

TINY = model_config("tiny")


@pytest.fixture
def one_thread():
    """torch on one thread for the test: tiny matmuls on a shared CPU wait on idle threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_bert():
    """Factory: tiny_bert(num_labels=2, seed=0) -> a fresh BertForSequenceClassification in eval mode."""

    def make(num_labels: int = 2, seed: int = 0):
        return tiny_model(TINY, num_labels, seed).eval()

    return make


@pytest.fixture
def tiny_batch():
    """A padded batch of 4 real sentences for the tiny model."""
    tok = load_tokenizer(TINY)
    texts = ["a gripping, funny film.", "dull and far too long", "i loved it!", "not worth the ticket"]
    return dict(tok(texts, padding=True, return_tensors="pt"))


@pytest.fixture
def attention_targets():
    return Targets(modules=["query", "value"], head=["classifier"])


@pytest.fixture
def compose():
    """Factory: compose(overrides, *, config_name="train", return_hydra_config=False) -> DictConfig, the
    configs in conf/ composed the way ``python -m bench train`` composes them
    (``bench.config.store.compose``)."""
    return store.compose


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch):
    """W&B offline, its folders under tmp_path, no API key: nothing leaves the machine."""
    for var, sub in (
        ("WANDB_DIR", "wandb"),
        ("WANDB_CACHE_DIR", "wandb-cache"),
        ("WANDB_CONFIG_DIR", "wandb-config"),
        ("WANDB_DATA_DIR", "wandb-data"),
    ):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)


@pytest.fixture
def results(tmp_path) -> Path:
    """A results folder (runs.csv and run folders) holding helpers.results' ``RUNS``; its path."""
    write_results(tmp_path)
    return tmp_path
