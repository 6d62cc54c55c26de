"""Offline sentiment data: the human-rated corpora shipped in the vaderSentiment 3.3.2 sdist on PyPI.

Hutto, C.J. & Gilbert, E.E. (2014). VADER: A Parsimonious Rule-based Model for Sentiment Analysis of
Social Media Text. Eighth International Conference on Weblogs and Social Media (ICWSM-14).
The data are released with vaderSentiment under the MIT licence (Copyright (c) 2016 C.J. Hutto).

The sdist's ``additional_resources/hutto_ICWSM_2014.tar.gz`` holds four corpora, each text rated
-4..+4 by at least 20 people, as ``id<TAB>mean rating<TAB>text`` (UTF-8, CRLF line ends, no header):

    movieReviewSnippets   10,605 Rotten Tomatoes sentences (from Pang & Lee's reviews)
    tweets                 4,200
    amazonReviewSnippets   3,708
    nytEditorialSnippets   5,190

The sdist is fetched once with pip into the cache and checked by its sha256 (``bench.inputs.packaged``),
and the four ``*_GroundTruth.txt`` files are extracted there. The corpora have no splits:
``split_indices`` makes seeded 80/10/10 ones (validation and test n // 10 rows each; with a
``test_fraction``, the test part is that share of the corpus and train the rest) that are the same on
every machine.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np

from bench.inputs.packaged import Archive, cached_file, read_member, write_atomic

PACKAGE = "vaderSentiment==3.3.2"
SDIST = "vaderSentiment-3.3.2.tar.gz"
SDIST_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
INNER_TAR = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
CORPORA = ("movieReviewSnippets", "tweets", "amazonReviewSnippets", "nytEditorialSnippets")
ARCHIVE = Archive(PACKAGE, SDIST, SDIST_SHA256, sdist=True, lock="vader.lock")
MAX_TEST_FRACTION = 0.9  # validation takes a tenth: a test part below this share leaves train a row


def corpus_file(corpus: str, cache: Path | None = None) -> Path:
    """The path of ``<corpus>_GroundTruth.txt`` in the cache, downloading and extracting it if needed."""
    if corpus not in CORPORA:
        raise ValueError(f"unknown vader corpus {corpus!r}; available: {', '.join(CORPORA)}")
    return cached_file(ARCHIVE, f"{corpus}_GroundTruth.txt", _extract, cache)


def read_corpus(corpus: str, cache: Path | None = None) -> tuple[list[str], np.ndarray, list[str]]:
    """(ids, mean ratings as float64, texts) in file order."""
    path = corpus_file(corpus, cache)
    ids, ratings, texts = [], [], []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split("\t", 2)
        if len(parts) != 3:
            raise ValueError(f"{path}, line {n}: expected 'id<TAB>rating<TAB>text', got {line[:80]!r}")
        ids.append(parts[0])
        ratings.append(float(parts[1]))
        texts.append(parts[2].strip())
    return ids, np.array(ratings, dtype=np.float64), texts


def split_indices(n: int, seed: int, test_fraction: float | None = None) -> dict[str, np.ndarray]:
    """Disjoint sorted row indices: validation gets n // 10 rows, test n // 10 (or ``int(n *
    test_fraction)`` when set, a fraction in (0, MAX_TEST_FRACTION)), train the rest.

    numpy's default_rng (PCG64) permutation is the same on every platform and numpy version; the test part
    is the same prefix of it whatever its size, so a larger one holds the n // 10 default's rows.
    """
    order = np.random.default_rng(seed).permutation(n)
    n_val = n // 10
    n_test = n // 10 if test_fraction is None else int(n * test_fraction)
    return {
        "train": np.sort(order[n_val + n_test :]),
        "validation": np.sort(order[:n_val]),
        "test": np.sort(order[n_val : n_val + n_test]),
    }


# -- extraction (called under the lock) ----------------------------------------------------------


def _extract(sdist: Path, cache: Path) -> None:
    """Write the four ``*_GroundTruth.txt`` files from the nested tarball into ``cache`` atomically."""
    with tarfile.open(fileobj=io.BytesIO(read_member(sdist, INNER_TAR)), mode="r:gz") as inner:
        members = {Path(m.name).name: m for m in inner.getmembers() if m.isfile()}
        for corpus in CORPORA:
            name = f"{corpus}_GroundTruth.txt"
            write_atomic(cache / name, inner.extractfile(members[name]).read())
