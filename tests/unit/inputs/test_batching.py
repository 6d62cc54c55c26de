"""Batching: length-grouped orders are seeded permutations with little padding; dynamic padding."""

import numpy as np
import torch

from bench.inputs.batching import Collator, EpochOrder, eval_loader, length_grouped_order
from bench.inputs.models import load_tokenizer, model_config


def test_length_grouped_order_is_a_permutation_with_similar_lengths_per_batch():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 120, size=1000).tolist()
    order = length_grouped_order(lengths, batch_size=16, rng=np.random.default_rng(1))
    assert sorted(order) == list(range(1000))
    batches = [order[i : i + 16] for i in range(0, 1000, 16)]
    grouped_spread = np.mean([np.ptp([lengths[i] for i in b]) for b in batches])
    random_order = np.random.default_rng(1).permutation(1000)
    random_spread = np.mean(
        [np.ptp([lengths[i] for i in random_order[j : j + 16]]) for j in range(0, 1000, 16)]
    )
    assert grouped_spread < random_spread / 5


def test_epoch_order_is_seeded_and_changes_between_epochs():
    lengths = list(range(1, 101))
    a, b = (
        EpochOrder(lengths, 8, seed=3, group_by_length=True),
        EpochOrder(lengths, 8, seed=3, group_by_length=True),
    )
    first_a, first_b = list(a), list(b)
    assert first_a == first_b
    assert list(a) != first_a  # a new order for the next epoch
    assert sorted(list(EpochOrder(lengths, 8, seed=3, group_by_length=False))) == list(range(100))


def test_collator_pads_to_the_longest_in_batch():
    tok = load_tokenizer(model_config("tiny"))
    examples = []
    for i, text in enumerate(["short", "a much longer sentence here"]):
        enc = tok(text)
        examples.append({**enc, "labels": i, "idx": 10 + i})
    batch = Collator(tok, regression=False)(examples)
    longest = max(len(e["input_ids"]) for e in examples)
    assert batch["input_ids"].shape == (2, longest)
    assert batch["attention_mask"].sum(1).tolist() == [len(e["input_ids"]) for e in examples]
    assert batch["labels"].dtype == torch.long and batch["idx"].tolist() == [10, 11]
    assert Collator(tok, regression=True)(examples)["labels"].dtype == torch.float32


def test_eval_loader_sorts_by_length():
    examples = [
        {"input_ids": [1] * n, "attention_mask": [1] * n, "labels": 0, "idx": n} for n in (5, 2, 9, 3)
    ]
    tok = load_tokenizer(model_config("tiny"))
    idx = [i for b in eval_loader(examples, Collator(tok, False), batch_size=2) for i in b["idx"].tolist()]
    assert idx == [2, 3, 5, 9]
