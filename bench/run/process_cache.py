"""Work shared by the runs of one process (a sweep under Hydra's basic launcher, or a joblib worker that
runs several): the loaded task, its tokenized splits and the loaded base model are kept and reused.

Every entry is keyed by all that makes it, so a run gets exactly what it would have loaded itself; the
base model comes back as a deep copy (a run adapts and trains its model in place). Only the latest few
entries are kept (SIZES), so a sweep over many tasks or models holds a bounded amount.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import asdict
from typing import Any, TypeVar

from torch import nn

from bench.config.schemas import ModelConfig, TaskConfig
from bench.inputs import batching
from bench.inputs.models import load_model, load_tokenizer
from bench.inputs.tasks import TaskData, load_task

T = TypeVar("T")
SIZES = {"task": 4, "examples": 12, "tokenizer": 2, "model": 1}  # entries kept: a model can be large


class Lru:
    """The ``size`` latest values by key."""

    def __init__(self, size: int):
        self.size, self.values = size, OrderedDict()

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        if key in self.values:
            self.values.move_to_end(key)
            return self.values[key]
        value = self.values[key] = make()
        while len(self.values) > self.size:
            self.values.popitem(last=False)
        return value

    def clear(self) -> None:
        self.values.clear()


CACHES = {name: Lru(size) for name, size in SIZES.items()}


def _key(*parts: Any) -> str:
    return repr(parts)


def task(cfg: TaskConfig, with_dev: bool) -> TaskData:
    """``bench.inputs.tasks.load_task(cfg, with_dev)``, loaded once per process."""
    return CACHES["task"].get(_key(asdict(cfg), with_dev), lambda: load_task(cfg, with_dev))


def examples(dataset, tokenizer, text_fields: list[str], max_length: int, regression: bool) -> list[dict]:
    """``bench.inputs.batching.tokenize`` of ``dataset``, once per process for a dataset (by its
    fingerprint), tokenizer
    and max length. The list is shared: it must not be changed."""
    key = _key(
        dataset._fingerprint, tokenizer.name_or_path, len(tokenizer), text_fields, max_length, regression
    )
    return CACHES["examples"].get(
        key, lambda: batching.tokenize(dataset, tokenizer, text_fields, max_length, regression)
    )


def tokenizer(cfg: ModelConfig):
    """``bench.inputs.models.load_tokenizer(cfg)``, loaded once per process (tokenizers are not changed by
    runs)."""
    return CACHES["tokenizer"].get(_key(asdict(cfg)), lambda: load_tokenizer(cfg))


def base_model(cfg: ModelConfig, num_labels: int, seed: int, **kwargs) -> nn.Module:
    """A copy of ``bench.inputs.models.load_model(cfg, num_labels, seed)``, loaded once per process. With
    ``kwargs`` (a variant's own loading, e.g. a quantization config) it is loaded anew each time."""
    if kwargs:
        return load_model(cfg, num_labels, seed=seed, **kwargs)
    loaded = CACHES["model"].get(
        _key(asdict(cfg), num_labels, seed), lambda: load_model(cfg, num_labels, seed)
    )
    return copy.deepcopy(loaded)


def clear() -> None:
    for cache in CACHES.values():
        cache.clear()
