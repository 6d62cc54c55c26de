"""Each rank's share (bench.run.distributed): of every single-process batch, and of the evaluation."""

from __future__ import annotations

import pytest

from bench.inputs import batching
from bench.run.distributed import World, shard


def test_the_ranks_split_every_single_process_batch():
    def batches(w: World) -> list[list[int]]:
        order = batching.EpochOrder(list(range(5, 80)), 16, seed=0, group_by_length=True)  # every rank's
        return list(batching.RankBatches(order, 16, w))

    single, ranks = batches(World()), [batches(World(r, 2)) for r in range(2)]
    assert len(single) == len(ranks[0]) == len(ranks[1]) == 5
    for i, batch in enumerate(single):
        assert ranks[0][i] + ranks[1][i] == batch and abs(len(ranks[0][i]) - len(ranks[1][i])) <= 1
    assert shard([1, 2, 3], World(2, 3)) == [3]


def test_each_rank_evaluates_its_share_and_together_all(tiny_tokenizer_examples):
    examples, collate = tiny_tokenizer_examples
    seen = []
    for rank in range(3):
        for batch in batching.eval_loader(examples, collate, 4, World(rank, 3)):
            seen += batch["idx"].tolist()
    assert sorted(seen) == sorted(e["idx"] for e in examples)


@pytest.fixture
def tiny_tokenizer_examples():
    from bench.inputs.models import load_tokenizer, model_config

    tok = load_tokenizer(model_config("tiny"))
    texts = [f"review number {i} " * (1 + i % 5) for i in range(10)]
    enc = tok(texts)
    examples = [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
                 "labels": i % 2, "idx": i} for i in range(10)]  # fmt: skip
    return examples, batching.Collator(tok, regression=False)
