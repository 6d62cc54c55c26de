"""The fingerprint of the user's data files a task reads: each file's size and sha256, and one digest.

A task with ``task.data_dir`` (GLUE TSV files, or local CSV / JSON / parquet files; see
``bench.inputs.tasks.data_files``) reads files that the user may edit in place. Their fingerprint enters
the config hash as ``task.data_fingerprint`` (``bench.run.spec``), so edited data is a new configuration
and the same command trains again. Packaged data adds nothing: the vader corpora are fixed by the sdist's
checksum, the Hub's datasets by their name.

Hashing a large file takes a while, so each file's sha256 is cached by (path, size, mtime) in
``data-fingerprints.json`` under the cache folder (``bench.inputs.packaged.cache_dir``): a sweep hashes
each file once, and a file whose size or mtime changed is hashed again. The cache is written atomically; one
that cannot be read or written is ignored (every file is then hashed).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.inputs.packaged import cache_dir, file_sha256

SETTING = "data_fingerprint"  # the key of the task section that holds the digest (settings: task.<SETTING>)
CACHE_FILE = "data-fingerprints.json"


@dataclass(frozen=True)
class DataFile:
    """One data file a task reads: its split, its name in ``task.data_dir``, its size and sha256."""

    split: str
    name: str
    size: int
    sha256: str


def fingerprint(files: dict[str, Path], cache: Path | None = None) -> list[DataFile]:
    """The fingerprint of ``files`` (split -> path), in their order; sha256s cached under ``cache``
    (default ``cache_dir()``)."""
    store = Path(cache) if cache is not None else cache_dir()
    known = _read_cache(store / CACHE_FILE)
    out, changed = [], False
    for split, path in files.items():
        path = Path(path).expanduser().resolve()
        stat = path.stat()
        entry = known.get(str(path))
        stamp = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        if entry is None or {k: entry.get(k) for k in stamp} != stamp:
            entry = known[str(path)] = stamp | {"sha256": file_sha256(path)}
            changed = True
        out.append(DataFile(split=split, name=path.name, size=stat.st_size, sha256=entry["sha256"]))
    if changed:
        _write_cache(store / CACHE_FILE, known)
    return out


def digest(files: list[DataFile]) -> str:
    """One sha256 (hex) of every file's split, name, size and sha256: what enters the config hash."""
    text = json.dumps([asdict(f) for f in files], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _read_cache(path: Path) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(path: Path, entries: dict[str, dict[str, Any]]) -> None:
    """Write ``entries`` atomically, keeping those of files that still exist."""
    kept = {p: e for p, e in entries.items() if Path(p).is_file()}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(kept, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
