"""Archives fetched with pip into the cache (bench.inputs.packaged): download, checksum, extraction,
offline message; on small archives built here (no network)."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from bench.inputs import packaged
from bench.inputs.packaged import Archive


def make_zip(path: Path, members: dict[str, bytes]) -> Archive:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return Archive("toy==1.0", path.name, digest, sdist=False, lock="toy.lock")


def make_tar(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))


def extract_a(archive: Path, cache: Path) -> None:
    packaged.write_atomic(cache / "a.txt", packaged.read_member(archive, "pkg/a.txt"))


@pytest.fixture
def served(tmp_path, monkeypatch) -> tuple[Archive, list]:
    """A toy wheel that the fake pip copies into its folder; the calls are recorded."""
    source = tmp_path / "index"
    source.mkdir()
    archive = make_zip(source / "toy-1.0-py3-none-any.whl", {"pkg/a.txt": b"hello"})
    calls = []

    def fake_pip(spec, dest):
        calls.append(spec.pip_args())
        shutil.copy(source / spec.filename, dest)
        return subprocess.CompletedProcess([], 0, "", "")

    monkeypatch.setattr(packaged, "_pip_download", fake_pip)
    return archive, calls


def test_pip_arguments_name_the_kind_of_archive():
    wheel = Archive("a==1", "a.whl", "0", sdist=False, lock="a.lock")
    sdist = Archive("a==1", "a.tar.gz", "0", sdist=True, lock="a.lock")
    assert wheel.pip_args() == ["download", "--no-deps", "--only-binary", ":all:", "a==1"]
    assert sdist.pip_args() == ["download", "--no-deps", "--no-binary", ":all:", "a==1"]


def test_download_once_then_the_cache(served, tmp_path):
    archive, calls = served
    cache = tmp_path / "cache"
    path = packaged.cached_file(archive, "a.txt", extract_a, cache)
    assert path.read_bytes() == b"hello" and len(calls) == 1
    assert packaged.cached_file(archive, "a.txt", extract_a, cache) == path and len(calls) == 1
    assert sorted(p.name for p in cache.iterdir()) == ["a.txt", archive.filename, "toy.lock"]


def test_cache_dir_follows_the_environment(served, tmp_path, monkeypatch):
    monkeypatch.setenv("PEFT_BENCH_CACHE", str(tmp_path / "env"))
    assert packaged.cached_file(served[0], "a.txt", extract_a) == tmp_path / "env" / "a.txt"


def test_checksum_refusal_deletes_the_archive(tmp_path, monkeypatch):
    monkeypatch.setattr(packaged, "_pip_download", lambda a, d: pytest.fail("unexpected download"))
    archive = make_zip(tmp_path / "toy.whl", {"pkg/a.txt": b"hello"})
    (tmp_path / "toy.whl").write_bytes(b"tampered")
    bad = hashlib.sha256(b"tampered").hexdigest()
    with pytest.raises(RuntimeError, match=f"has sha256 {bad}, expected {archive.sha256}; the corrupt file"):
        packaged.cached_file(archive, "a.txt", extract_a, tmp_path)
    assert not (tmp_path / "toy.whl").exists() and not (tmp_path / "a.txt").exists()


def test_offline_message_says_what_to_run_and_copy(tmp_path, monkeypatch):
    archive = Archive("toy==1.0", "toy.whl", "ab" * 32, sdist=False, lock="toy.lock")
    monkeypatch.setattr(
        packaged, "_pip_download", lambda a, d: subprocess.CompletedProcess([], 1, "", "ERROR: no network")
    )
    with pytest.raises(RuntimeError) as e:
        packaged.cached_file(archive, "a.txt", extract_a, tmp_path)
    msg = str(e.value)
    assert "could not download toy==1.0 with pip (no network?)" in msg and "ERROR: no network" in msg
    assert "python -m pip download --no-deps --only-binary :all: toy==1.0 -d ." in msg
    assert f"copy toy.whl (sha256 {'ab' * 32}) into {tmp_path}/" in msg
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_an_extraction_that_misses_the_file_is_an_error(served, tmp_path):
    with pytest.raises(RuntimeError, match="did not yield b.txt"):
        packaged.cached_file(served[0], "b.txt", extract_a, tmp_path)


def test_read_member_of_a_zip_and_a_tar(tmp_path):
    make_zip(tmp_path / "w.whl", {"pkg/a.txt": b"from zip"})
    make_tar(tmp_path / "s.tar.gz", {"pkg-1.0/a.txt": b"from tar"})
    assert packaged.read_member(tmp_path / "w.whl", "pkg/a.txt") == b"from zip"
    assert packaged.read_member(tmp_path / "s.tar.gz", "pkg-1.0/a.txt") == b"from tar"


def test_file_sha256_and_write_atomic(tmp_path):
    packaged.write_atomic(tmp_path / "f", b"x" * 3_000_000)
    assert packaged.file_sha256(tmp_path / "f") == hashlib.sha256(b"x" * 3_000_000).hexdigest()
    assert [p.name for p in tmp_path.iterdir()] == ["f"]
