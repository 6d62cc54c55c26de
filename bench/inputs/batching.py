"""Tokenization and batching: dynamic padding, with length-grouped batches for training, each cut to
the rank's share when distributed (bench.run.distributed)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import DataLoader

from bench.run.distributed import ONE_PROCESS, World, shard


def tokenize(dataset, tokenizer, text_fields: list[str], max_length: int, regression: bool) -> list[dict]:
    """A list of examples {input_ids, attention_mask, [token_type_ids], labels, idx} (unpadded)."""
    columns = dataset.to_dict()  # plain lists (datasets' column objects are not lists)
    texts = [columns[f] for f in text_fields]
    enc = tokenizer(*texts, truncation=True, max_length=max_length)
    labels, idx = columns["label"], columns["idx"]
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
    return [
        {
            **{k: enc[k][i] for k in keys},
            "labels": float(labels[i]) if regression else int(labels[i]),
            "idx": int(idx[i]),
        }
        for i in range(len(labels))
    ]


def length_grouped_order(lengths: list[int], batch_size: int, rng: np.random.Generator) -> list[int]:
    """A shuffled order whose consecutive batches hold examples of similar length.

    Shuffle, cut into mega-batches of 50 batches, sort each by length, then shuffle the full batches
    (short ones go last), so padding is small while every epoch still sees a different order.
    """
    order = rng.permutation(len(lengths))
    mega = batch_size * 50
    batches = []
    for start in range(0, len(order), mega):
        chunk = sorted(order[start : start + mega], key=lambda i: -lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    full = [b for b in batches if len(b) == batch_size]
    rng.shuffle(full)  # a short batch goes last, or it would shift every batch boundary after it
    return [int(i) for b in full + [b for b in batches if len(b) < batch_size] for i in b]


class Collator:
    """Pads a list of examples to the longest one in the batch, rounded up to a multiple of ``pad_to``
    tokens when given (a compiled model then sees few shapes)."""

    def __init__(self, tokenizer, regression: bool, pad_to: int | None = None):
        self.tokenizer, self.pad_to = tokenizer, pad_to
        self.label_dtype = torch.float32 if regression else torch.long

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        features = [{k: v for k, v in e.items() if k not in ("labels", "idx")} for e in examples]
        batch = dict(self.tokenizer.pad(features, pad_to_multiple_of=self.pad_to, return_tensors="pt"))
        batch["labels"] = torch.tensor([e["labels"] for e in examples], dtype=self.label_dtype)
        batch["idx"] = torch.tensor([e["idx"] for e in examples])
        return batch


class EpochOrder(torch.utils.data.Sampler):
    """A new (optionally length-grouped) order each epoch, from a seeded generator.

    ``state_dict`` is the generator's state before the current epoch's order was drawn, so a resumed run
    (``bench.run.checkpoint``) draws that epoch's order again, and every later one as an uninterrupted run.
    """

    def __init__(self, lengths: list[int], batch_size: int, seed: int, group_by_length: bool):
        self.lengths, self.batch_size, self.group = lengths, batch_size, group_by_length
        self.rng = np.random.default_rng(seed)
        self.epoch_start = self.rng.bit_generator.state

    def __len__(self) -> int:
        return len(self.lengths)

    def state_dict(self) -> dict:
        return {"rng": self.epoch_start}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = self.epoch_start = state["rng"]

    def __iter__(self):
        self.epoch_start = self.rng.bit_generator.state
        if self.group:
            return iter(length_grouped_order(self.lengths, self.batch_size, self.rng))
        return iter(self.rng.permutation(len(self.lengths)).tolist())


class RankBatches(torch.utils.data.Sampler):
    """The single-process batches (``batch_size`` consecutive indices of ``order``), each cut to this
    rank's slice (``bench.run.distributed.shard``); with one process, the batches themselves."""

    def __init__(self, order: EpochOrder, batch_size: int, w: World):
        self.order, self.batch_size, self.world = order, batch_size, w

    def __len__(self) -> int:
        return math.ceil(len(self.order) / self.batch_size)

    def state_dict(self) -> dict:
        return self.order.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.order.load_state_dict(state)

    def __iter__(self):
        indices = list(self.order)
        for start in range(0, len(indices), self.batch_size):
            yield shard(indices[start : start + self.batch_size], self.world)


def train_loader(
    examples,
    collator,
    batch_size: int,
    seed: int,
    group_by_length: bool,
    workers: int = 0,
    w: World = ONE_PROCESS,
):
    lengths = [len(e["input_ids"]) for e in examples]
    batches = RankBatches(EpochOrder(lengths, batch_size, seed, group_by_length), batch_size, w)
    return DataLoader(examples, batch_sampler=batches, collate_fn=collator, num_workers=workers)


def eval_loader(examples, collator, batch_size: int, w: World = ONE_PROCESS):
    """Examples sorted by length (fast), every ``w.size``-th from ``w.rank`` on (a rank's share); the
    predictions are put back in order by `idx` once gathered."""
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]["input_ids"]))[w.rank :: w.size]
    return DataLoader([examples[i] for i in order], batch_size=batch_size, collate_fn=collator)
