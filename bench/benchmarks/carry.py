"""What travels to a lent GPU machine for ``bench.benchmarks.gpu_check``: the repository's files plus one
carried folder (wheels and the peft-bench cache), within CARRY_LIMIT.

The repository's part is what git would send: tracked files and untracked ones that it does not ignore
(``git ls-files --cached --others --exclude-standard``), a link counted as a link.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from omegaconf import OmegaConf

from bench.config.store import CONF_DIR

CARRY_LIMIT = 64 * 2**20  # bytes: the working tree and the carried paths of one run, together


def repository_files(root: Path) -> list[Path]:
    """The files of ``root`` that travel: tracked, or untracked and not ignored."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root, capture_output=True, check=True,
    ).stdout  # fmt: skip
    return [root / name for name in dict.fromkeys(out.decode().split("\0")) if name]


def folder_bytes(folder: Path) -> int:
    """The bytes of every file under ``folder`` (links as links)."""
    return sum(p.lstat().st_size for p in folder.rglob("*") if p.is_symlink() or p.is_file())


def carry_bytes(root: Path, carried: Path) -> dict[str, int]:
    """The repository's bytes, the carried folder's, and their total."""
    repository = sum(p.lstat().st_size for p in repository_files(root) if p.is_symlink() or p.exists())
    carried_bytes = folder_bytes(carried) if carried.is_dir() else 0
    return {"repository": repository, "carried": carried_bytes, "total": repository + carried_bytes}


def copy_task_data(task: str, cache: Path) -> list[Path]:
    """Copy the offline corpus of task ``task`` (conf/task/<task>.yaml, source vader) into ``cache``, a
    peft-bench cache folder (PEFT_BENCH_CACHE); nothing for a task of another source."""
    from bench.inputs import vader

    cfg = OmegaConf.load(CONF_DIR / "task" / f"{task}.yaml")
    if cfg.get("source") != "vader":
        return []
    cache.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy(vader.corpus_file(cfg.vader_corpus), cache))]
