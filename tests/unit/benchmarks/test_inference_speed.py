"""bench.benchmarks.inference_speed: a variant's inference row on the tiny shape (merged logits equal
unmerged ones; the model is left unmerged, in its mode). No timed assertions."""

from __future__ import annotations

import pytest
import torch
from helpers.speed import MERGE_ATOL
from tqdm.auto import tqdm

from bench.benchmarks import inference_speed, speed
from bench.inputs.models import model_config, resolve_targets
from variants.base import adapter_layers

CPU = torch.device("cpu")

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("name", ["lora", "dora", "vera", "adalora", "qlora", "full"])
def test_inference_row_merged_logits_equal_unmerged(name):
    """The adapter is made to matter (its tensors moved off their init); merging keeps the logits, and
    latency leaves the model unmerged and in train mode."""
    shape = model_config("tiny")
    base = speed.base_model(shape, 8, speed.SEED)
    targets = resolve_targets(shape, "attention")
    variant, ours = speed.our_run(name, speed.variant_options(name, 3, shape), base, targets, CPU)
    torch.manual_seed(1)
    with torch.no_grad():
        for layer in adapter_layers(ours.model).values():
            for t in layer.adapter_tensors().values():
                t.add_(torch.randn_like(t))
    batch = speed.make_batch(shape, 2, 8, speed.SEED, CPU)
    row = inference_speed.latency(base, variant, ours.model, batch, 1, 2, CPU, tqdm(disable=True))
    assert row["base_ms"] > 0 and row["unmerged_ms"] > 0
    assert ours.model.training and base.training
    assert not any(layer.merged for layer in adapter_layers(ours.model).values())
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    unmerged = inference_speed.logits(ours.model.eval(), inputs, CPU)
    if name == "full":
        assert row["merge_note"] == inference_speed.NO_MERGE and row["merged_ms"] == ""
        return
    assert (unmerged - inference_speed.logits(base.eval(), inputs, CPU)).abs().max() > 100 * MERGE_ATOL
    assert row["merged_ms"] > 0 and row["merged_max_diff"] <= MERGE_ATOL
    variant.merge(ours.model)
    torch.testing.assert_close(
        inference_speed.logits(ours.model, inputs, CPU), unmerged, rtol=0, atol=MERGE_ATOL
    )
