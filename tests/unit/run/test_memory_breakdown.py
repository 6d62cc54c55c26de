"""bench.run.memory_breakdown: what holds a training step's memory, by tensor, on the tiny model."""

import contextlib

import pytest
import torch
from torch import nn

import variants
from bench.config.schemas import TrainConfig
from bench.inputs.models import load_tokenizer, model_config, resolve_targets, tiny_model
from bench.results.columns import MEMORY_PARTS as PARTS
from bench.run import memory_breakdown
from bench.run.loop import Fit, make_optimizer, train_step
from bench.run.memory_breakdown import MemoryBreakdown
from variants.base import Targets

TINY = model_config("tiny")
CPU = torch.device("cpu")
QV = Targets(["query", "value"])


def batch(texts=("a gripping, funny film.", "dull and far too long", "i loved it!", "not worth it")):
    encoded = dict(load_tokenizer(TINY)(list(texts), padding=True, return_tensors="pt"))
    return encoded | {"labels": torch.tensor([1, 0] * (len(texts) // 2))}


def adapted(name: str, options: dict, targets: Targets | None = None):
    torch.manual_seed(0)
    model = tiny_model(TINY, 2, 0).train()
    variant = variants.build(name, options)
    variant.apply(model, targets or resolve_targets(TINY, variant.config.targets))
    return variant, model


def measured(name: str, options: dict, targets: Targets | None = None, steps: int = 2) -> dict[str, int]:
    variant, model = adapted(name, options, targets)
    optimizer = make_optimizer(variant.param_groups(model, 1e-3, 0.0), CPU)
    breakdown = MemoryBreakdown(model, optimizer, steps)
    for step in range(1, steps + 1):
        with breakdown.around(step):
            train_step(model, variant, optimizer, [batch()], step, steps, CPU)
    return breakdown.bytes


def trainable_params(name: str, options: dict, targets: Targets | None = None) -> int:
    return sum(p.numel() for p in adapted(name, options, targets)[1].parameters() if p.requires_grad)


def test_each_part_holds_what_the_method_trains():
    lora, qlora, full = measured("lora", {"r": 8}, QV), measured("qlora", {"r": 8}, QV), measured("full", {})
    for parts, name, options, targets in ((lora, "lora", {"r": 8}, QV), (full, "full", {}, None)):
        n = trainable_params(name, options, targets)
        assert parts["trainable_weights"] == 4 * n, parts  # fp32
        assert parts["gradients"] == parts["trainable_weights"], parts
        # AdamW: two moments per weight, and a step counter (4 bytes) per trainable tensor
        assert 0 <= parts["optimizer_state"] - 2 * parts["trainable_weights"] < 4 * 50, parts
        assert parts["activations"] > 0, parts
        held = sum(parts[k] for k in ("frozen_weights", "trainable_weights", "optimizer_state"))
        assert held < parts["peak"] <= held + parts["gradients"] + parts["activations"], parts
    assert lora["trainable_weights"] < 0.1 * lora["frozen_weights"], lora
    assert full["frozen_weights"] < 0.02 * full["trainable_weights"], full  # the position/type id buffers
    adapters = 2 * 2 * (8 * 32 + 32 * 8) * 4  # LoRA A and B on q and v of both layers
    weights = ("frozen_weights", "trainable_weights")
    assert sum(lora[k] for k in weights) == sum(full[k] for k in weights) + adapters, (lora, full)
    # q and v of both layers in NF4: 4 x 32 x 32 fp32 weights held as 4-bit codes (512 bytes), the blocks'
    # absmax as 8-bit codes (16, in a storage padded to 256) with a scale and an offset (fp32)
    assert lora["frozen_weights"] - qlora["frozen_weights"] == 4 * (32 * 32 * 4 - (512 + 256 + 4 + 4))
    assert qlora["trainable_weights"] == lora["trainable_weights"]


def test_a_one_step_run_measures_its_step_with_the_optimizer_state_it_creates():
    parts = measured("lora", {"r": 8}, QV, steps=1)
    assert parts["optimizer_state"] >= 2 * parts["trainable_weights"] > 0
    assert parts["peak"] >= parts["frozen_weights"] + parts["trainable_weights"] + parts["optimizer_state"]


def test_a_tied_weight_counts_once():
    model = nn.Sequential(nn.Embedding(10, 8), nn.Linear(8, 10, bias=False))
    model[1].weight = model[0].weight
    optimizer = make_optimizer([{"params": list(model.parameters())}], CPU)
    breakdown = MemoryBreakdown(model, optimizer, 1)
    with breakdown.around(1):
        model(torch.tensor([1, 2, 3])).sum().backward()
        optimizer.step()
    assert breakdown.bytes["trainable_weights"] == breakdown.bytes["gradients"] == 10 * 8 * 4
    assert breakdown.mb() == {k: round(v / 2**20, 1) for k, v in breakdown.bytes.items()}
    assert list(breakdown.mb()) == list(PARTS)


def test_a_compiled_model_is_not_measured():
    variant, model = adapted("lora", {"r": 8}, QV)
    optimizer = make_optimizer(variant.param_groups(model, 1e-3, 0.0), CPU)
    breakdown = MemoryBreakdown(model, optimizer, 3, compiled=True)
    for step in (1, 2, 3):
        with breakdown.around(step):
            train_step(model, variant, optimizer, [batch()], step, 3, CPU)
    assert breakdown.bytes is None


def test_a_step_that_stops_before_its_update_gives_no_breakdown():
    variant, model = adapted("lora", {"r": 8}, QV)
    optimizer = make_optimizer(variant.param_groups(model, 1e-3, 0.0), CPU)
    breakdown = MemoryBreakdown(model, optimizer, 3)
    with pytest.raises(RuntimeError), breakdown.around(2):
        model(**batch()).loss.backward()
        raise RuntimeError("a non-finite loss")
    assert breakdown.bytes is None and breakdown.mb() is None


def fit_lora(monkeypatch, measure: bool):
    """A 3-step LoRA run on the tiny model, in train mode (dropout draws random numbers)."""
    if not measure:
        monkeypatch.setattr(MemoryBreakdown, "around", lambda self, step: contextlib.nullcontext())
    variant, model = adapted("lora", {"r": 8, "dropout": 0.1}, QV)
    loader = [batch(), batch(("so bad", "great", "meh", "wonderful")), batch()]
    probe = batch()

    def evaluate():
        with torch.no_grad():
            return {"score": model(**probe).logits.sum().item()}, {}

    cfg = TrainConfig(epochs=1, batch_size=4, warmup_ratio=0.0)
    torch.manual_seed(1)
    out = Fit(model, variant, loader, evaluate, cfg, 1e-2, CPU, "score", lambda values, step: None).run()
    return out, {k: v.clone() for k, v in model.state_dict().items()}, torch.get_rng_state()


def test_measuring_changes_nothing_the_run_computes(monkeypatch):
    measured_run, weights, rng = fit_lora(monkeypatch, measure=True)
    assert measured_run.memory_breakdown_mb is not None
    assert set(measured_run.memory_breakdown_mb) == set(PARTS)
    assert memory_breakdown.MEASURED_STEP <= measured_run.steps
    plain_run, plain_weights, plain_rng = fit_lora(monkeypatch, measure=False)
    assert plain_run.memory_breakdown_mb is None
    assert measured_run.history == plain_run.history and measured_run.best == plain_run.best
    assert torch.equal(rng, plain_rng)
    for name, w in weights.items():
        assert torch.equal(w, plain_weights[name]), name
