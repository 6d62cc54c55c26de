"""bench.run.memory: a run's peak counts from the built model, and model_bytes counts storage as held."""

import numpy as np
import torch
from torch import nn

import variants
from bench.run.memory import PeakMemory, model_bytes
from variants.base import Targets


def test_the_peak_is_the_model_plus_what_training_adds():
    memory = PeakMemory(torch.device("cpu"))
    dense = np.ones(50_000_000)  # 400 MB: a dense load that quantization then frees
    dense.sum()
    del dense
    model = nn.Linear(1024, 1024)  # 4 MB of weights
    memory.model_ready(model)
    training = np.ones(25_000_000)  # 200 MB held while training
    training.sum()
    peak = memory.peak_mb()
    assert 150 < peak < 300, peak  # the model and the 200 MB, not the 400 MB before the model was ready
    assert memory.model_mb == (1024 * 1024 + 1024) * 4 / 2**20
    assert memory.kind == "model_bytes_plus_cpu_rss_rise_in_training"


def test_model_bytes_counts_each_stored_tensor_once_as_held(tiny_bert):
    assert model_bytes(nn.Linear(4, 3)) == (4 * 3 + 3) * 4
    tied = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    tied[1].weight = tied[0].weight
    assert model_bytes(tied) == (16 + 4 + 4) * 4
    dense = tiny_bert()
    quantized = variants.build("qlora", {"r": 8}).apply(tiny_bert(), Targets(["query", "value"]))
    adapters = 2 * 2 * (8 * 32 + 32 * 8) * 4  # LoRA A and B on q and v of both layers, fp32
    nf4_saves = 2 * 2 * 32 * 32 * 4 * (1 - 4.127 / 32)  # q and v: fp32 weights -> about 4.13 bits each
    assert model_bytes(quantized) - adapters < model_bytes(dense) - 0.95 * nf4_saves
