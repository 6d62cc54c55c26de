"""The fingerprint of a task's data files (bench.inputs.fingerprint): sizes and sha256s, one digest, and
the sha256s cached by (path, size, mtime) under the cache folder."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from bench.inputs import fingerprint
from bench.inputs.fingerprint import CACHE_FILE, DataFile, digest


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    (tmp_path / "data").mkdir()
    train, dev = tmp_path / "data" / "train.tsv", tmp_path / "data" / "dev.tsv"
    train.write_text("sentence\tlabel\ngood\t1\n")
    dev.write_text("sentence\tlabel\nbad\t0\n")
    return {"train": train, "validation": dev}


@pytest.fixture
def hashed(monkeypatch) -> list[Path]:
    """The files whose sha256 is computed (not read from the cache), in order."""
    calls: list[Path] = []
    real = fingerprint.file_sha256

    def counting(path: Path) -> str:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(fingerprint, "file_sha256", counting)
    return calls


def test_each_file_has_its_split_name_size_and_sha256(files, tmp_path):
    got = fingerprint.fingerprint(files, cache=tmp_path / "cache")
    expected = [
        DataFile(split, path.name, path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest())
        for split, path in files.items()
    ]
    assert got == expected
    assert len(digest(got)) == 64 and digest(got) == digest(list(expected))


def test_an_edited_file_changes_the_digest_and_is_hashed_again(files, tmp_path, hashed):
    cache = tmp_path / "cache"
    before = digest(fingerprint.fingerprint(files, cache=cache))
    assert hashed == [p.resolve() for p in files.values()]
    assert digest(fingerprint.fingerprint(files, cache=cache)) == before  # from the cache
    assert len(hashed) == 2
    train = files["train"]
    stat = train.stat()
    train.write_text("sentence\tlabel\nfine\t1\n")  # the same size
    os.utime(train, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    after = fingerprint.fingerprint(files, cache=cache)
    assert digest(after) != before and after[0].size == stat.st_size
    assert hashed[2:] == [train.resolve()]  # only the edited file is hashed again


def test_the_cache_lives_in_the_cache_folder_and_a_damaged_one_is_ignored(
    files, tmp_path, monkeypatch, hashed
):
    monkeypatch.setenv("PEFT_BENCH_CACHE", str(tmp_path / "cache"))
    first = fingerprint.fingerprint(files)
    cached = json.loads((tmp_path / "cache" / CACHE_FILE).read_text())
    assert sorted(cached) == sorted(str(p.resolve()) for p in files.values())
    assert {e["sha256"] for e in cached.values()} == {f.sha256 for f in first}
    (tmp_path / "cache" / CACHE_FILE).write_text('{"cut short')
    assert fingerprint.fingerprint(files) == first  # hashed again, and the cache rewritten
    assert len(hashed) == 4 and json.loads((tmp_path / "cache" / CACHE_FILE).read_text()) == cached


def test_no_files_no_fingerprint(tmp_path):
    assert fingerprint.fingerprint({}, cache=tmp_path) == []
    assert not (tmp_path / CACHE_FILE).exists()
