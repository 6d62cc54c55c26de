"""BitFit: every bias and the head train (counted by hand on the tiny model), nothing else moves, the
saved state and its small config, nothing to merge, and a finished run reloaded by ``bench.tools.reload``
reproduces its predictions."""

from __future__ import annotations

import csv
import json

import numpy as np
import torch
from helpers.peft_reference import save_adapter_for_test, trained
from helpers.runs import tiny_run

import variants
from bench.tools.reload import load_run, predict
from variants import build
from variants.base import PEFT_PREFIX, Targets, adapter_layers
from variants.bitfit import BitFit, is_bias

HEAD = Targets(modules=["query"], head=["classifier"])  # the modules are unused: every bias trains
# The tiny BERT's biases, by hand (hidden 32, intermediate 64, 2 layers): per layer query, key, value and
# attention.output.dense (32 each), its LayerNorm (32), intermediate.dense (64), output.dense (32) and its
# LayerNorm (32); the embeddings' LayerNorm (32); the pooler (32); the head's weight (32 x 2) and bias (2).
TINY_BIASES = 2 * (4 * 32 + 32 + 64 + 32 + 32) + 32 + 32
TINY_HEAD = 32 * 2 + 2


def test_bitfit_is_registered(compose):
    assert variants.get("bitfit") is BitFit
    assert compose(["variant=bitfit", "model=tiny"]).variant.lr == 1e-3


def test_a_bias_is_a_parameter_named_bias():
    assert is_bias("bert.encoder.layer.0.attention.self.query.bias") and is_bias("bias")
    assert not is_bias("bert.encoder.layer.0.attention.self.query.weight")
    assert not is_bias("bert.my_bias_scale")


def test_every_bias_and_the_head_train_counted_by_hand(tiny_bert):
    model = build("bitfit").apply(tiny_bert(), HEAD)
    assert not adapter_layers(model)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    biases = {n for n, _ in model.named_parameters() if n.endswith(".bias")}
    assert trainable == biases | {"classifier.weight"}
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == TINY_BIASES + TINY_HEAD == 706


def test_training_moves_the_biases_and_nothing_else(tiny_bert, tiny_batch):
    before = {n: p.clone() for n, p in tiny_bert().named_parameters()}
    _, model = trained(tiny_bert, tiny_batch, HEAD, "bitfit")
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert moved == {n for n in before if n.endswith(".bias")} | {"classifier.weight"}


def test_the_saved_state_holds_the_trained_tensors_and_names_the_variant(tiny_bert, tiny_batch, tmp_path):
    variant, model = trained(tiny_bert, tiny_batch, HEAD, "bitfit")
    state = variant.adapter_state_dict(model)
    trainable = {PEFT_PREFIX + n: p for n, p in model.named_parameters() if p.requires_grad}
    assert set(state) == set(trainable)
    assert all(torch.equal(state[k], p) for k, p in trainable.items())
    save_adapter_for_test(variant, model, tmp_path, "tiny-bert")
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert config == {
        "variant": "bitfit",
        "base_model_name_or_path": "tiny-bert",
        "bias": "all",
        "modules_to_save": ["classifier"],
    }


def test_nothing_to_merge(tiny_bert, tiny_batch):
    variant, model = trained(tiny_bert, tiny_batch, HEAD, "bitfit")
    weights = {k: t.clone() for k, t in model.state_dict().items()}
    variant.merge(model)
    variant.unmerge(model)
    assert all(torch.equal(t, weights[k]) for k, t in model.state_dict().items())


def test_bench_reload_reproduces_a_bitfit_run(compose, tmp_path):
    run_dir = tiny_run(compose, tmp_path, "variant=bitfit")
    run = load_run(run_dir)
    assert run.variant.name == "bitfit"
    with (run_dir / "predictions.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    for split, logits in predict(run).items():
        saved = [[float(r["logit_0"]), float(r["logit_1"])] for r in rows if r["split"] == split]
        np.testing.assert_array_equal(logits, np.array(saved, dtype=np.float32))
