"""The code version a run records: the last commit that changed the code (``bench/``, ``variants/``,
``conf/``) of the checkout the ``bench`` package is imported from, and whether those folders hold
uncommitted changes.

A commit that changes only ``results/`` (committing runs as they come) leaves both as they were. Outside
a git checkout, or without git, both are None. ``code_state()`` asks git once per process.
"""

from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass
from pathlib import Path

CODE = ("bench", "variants", "conf")  # the folders whose commits are the code's, relative to the checkout
GIT_TIMEOUT_S = 10


@dataclass(frozen=True)
class CodeState:
    version: str | None  # the last commit that changed CODE (full hash); None outside a git checkout
    dirty: bool | None  # uncommitted changes under CODE (untracked files included); None outside git


def _git(root: Path, *args: str) -> str | None:
    """``git -C root args``'s output, stripped; None when git is missing or fails."""
    try:
        out = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=GIT_TIMEOUT_S
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def code_state_of(root: Path) -> CodeState:
    """The code state of the checkout at ``root`` (the folder holding CODE)."""
    version = _git(root, "log", "-1", "--format=%H", "--", *CODE)
    if not version:  # not a checkout, no git, or no commit of CODE
        return CodeState(None, None)
    status = _git(root, "status", "--porcelain", "--", *CODE)
    return CodeState(version, None if status is None else bool(status))


def package_root() -> Path:
    """The folder holding the imported ``bench`` package."""
    return Path(__file__).resolve().parents[2]


@functools.cache
def code_state() -> CodeState:
    """The code state of the checkout this process runs from (asked of git once per process)."""
    return code_state_of(package_root())
