"""Evaluation (bench.run.evaluation): every held-out split's logits in idx order, and their metrics; a split
left out draws what evaluating it would from torch's generator."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from bench.config.schemas import TaskConfig
from bench.run.evaluation import evaluator

TASK = TaskConfig(
    name="toy", text_fields=["x"], num_labels=2, metrics=["accuracy"], main_metric="accuracy",
    eval_splits={"test": ""},
)  # fmt: skip


class Sign(nn.Module):
    """Class 1 when the input is positive: logits [-x, x]."""

    def forward(self, x):
        return SimpleNamespace(logits=torch.stack([-x, x], dim=-1))


def batch(idx: list[int], x: list[float], labels: list[int]) -> dict:
    return {"idx": torch.tensor(idx), "x": torch.tensor(x), "labels": torch.tensor(labels)}


def test_each_split_comes_back_in_idx_order_with_its_metrics():
    model = Sign().train()
    loaders = {
        "dev": [batch([3, 1], [1.0, -1.0], [1, 1])],  # batches in length order, not idx order
        "test": [batch([2], [2.0], [1]), batch([0, 1], [-3.0, 0.5], [0, 0])],
    }
    metrics, outputs = evaluator(model, loaders, torch.device("cpu"), TASK)()
    assert not model.training  # evaluated in eval mode
    assert metrics == {"dev/accuracy": 0.5, "test/accuracy": pytest.approx(2 / 3)}
    logits, labels, idx = outputs["test"]
    assert idx.tolist() == [0, 1, 2] and labels.tolist() == [0, 0, 1]
    np.testing.assert_array_equal(logits[:, 1], np.array([-3.0, 0.5, 2.0], dtype=np.float32))
    assert outputs["dev"][2].tolist() == [1, 3]


def loader(idx: list[int], x: list[float], labels: list[int]) -> DataLoader:
    rows = list(zip(idx, x, labels, strict=True))
    return DataLoader(rows, batch_size=2, collate_fn=lambda b: batch(*map(list, zip(*b, strict=True))))


def test_a_split_left_out_is_only_started_so_training_draws_the_same_random_numbers():
    """Starting a DataLoader draws a seed from torch's generator: a split an evaluation leaves out draws
    it too, so dropout and the next epoch's order do not depend on which splits were evaluated."""
    loaders = {
        "dev": loader([0, 1, 2], [1.0, -1.0, 2.0], [1, 1, 1]),
        "test": loader([0, 1], [3.0, -3.0], [1, 0]),
    }
    torch.manual_seed(0)
    every, _ = evaluator(Sign(), loaders, torch.device("cpu"), TASK)()
    after_every = torch.rand(3)
    torch.manual_seed(0)
    dev, outputs = evaluator(Sign(), loaders, torch.device("cpu"), TASK, splits=["dev"])()
    after_dev = torch.rand(3)
    assert dev == {"dev/accuracy": pytest.approx(2 / 3)} and list(outputs) == ["dev"]
    assert every == dev | {"test/accuracy": 1.0}
    assert torch.equal(after_dev, after_every)
