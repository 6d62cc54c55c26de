"""Shared fixtures: a tiny random BERT classifier and its tokenizer (offline, seconds)."""

import pytest
import torch

from bench.models import ModelConfig, load_tokenizer, tiny_model
from variants.base import Targets

TINY = ModelConfig(name="tiny", source="tiny")


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


def train_a_few_steps(model, variant, batch, steps: int = 3, lr: float = 1e-2, seed: int = 0):
    """Make adapter weights non-zero with a few AdamW steps on random labels (for reference checks)."""
    torch.manual_seed(seed)
    labels = torch.randint(0, model.config.num_labels, (batch["input_ids"].shape[0],))
    opt = torch.optim.AdamW(variant.param_groups(model, lr, 0.0))
    model.train()
    for step in range(1, steps + 1):
        loss = model(**batch, labels=labels).loss
        extra = variant.extra_loss(model)
        if extra is not None:
            loss = loss + extra
        loss.backward()
        opt.step()
        variant.on_step_end(model, step, steps)
        opt.zero_grad()
    return model.eval()
