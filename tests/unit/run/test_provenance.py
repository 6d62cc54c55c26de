"""The code version a run records (bench.run.provenance): the last commit of bench/, variants/ or conf/,
kept by a commit of results only; dirty with an uncommitted change there; None outside git."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bench.run import provenance
from bench.run.provenance import CodeState, code_state_of


def git(root: Path, *args: str) -> str:
    out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def commit_all(root: Path, message: str) -> str:
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD")


def write(root: Path, name: str, text: str) -> None:
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(text)


def test_a_results_commit_keeps_the_version_and_a_code_change_makes_it_dirty(tmp_path):
    git(tmp_path, "init", "-q")
    for name in ("bench/a.py", "variants/b.py", "conf/c.yaml"):
        write(tmp_path, name, "x = 1\n")
    code = commit_all(tmp_path, "code")
    assert code_state_of(tmp_path) == CodeState(code, False)
    write(tmp_path, "results/compare/run/metrics.json", "{}\n")
    assert code_state_of(tmp_path) == CodeState(code, False)  # uncommitted results: not the code
    results = commit_all(tmp_path, "results")
    assert results != code and code_state_of(tmp_path) == CodeState(code, False)
    write(tmp_path, "conf/c.yaml", "x = 2\n")
    assert code_state_of(tmp_path) == CodeState(code, True)
    conf = commit_all(tmp_path, "conf")
    assert code_state_of(tmp_path) == CodeState(conf, False)
    write(tmp_path, "bench/new.py", "")  # a file not yet committed
    assert code_state_of(tmp_path) == CodeState(conf, True)


def test_outside_a_checkout_or_without_git_both_are_none(tmp_path, monkeypatch):
    assert code_state_of(tmp_path) == CodeState(None, None)
    git(tmp_path, "init", "-q")
    assert code_state_of(tmp_path) == CodeState(None, None)  # no commit yet
    write(tmp_path, "bench/a.py", "")
    commit_all(tmp_path, "code")
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))  # no git on the PATH
    assert code_state_of(tmp_path) == CodeState(None, None)


def test_the_state_of_this_checkout_is_asked_of_git_once_per_process(monkeypatch):
    provenance.code_state.cache_clear()
    calls = []
    found = CodeState("abc", False)
    monkeypatch.setattr(provenance, "code_state_of", lambda root: calls.append(root) or found)
    assert provenance.code_state() is provenance.code_state() is found
    assert calls == [provenance.package_root()]
    assert (provenance.package_root() / "bench" / "run" / "provenance.py").is_file()
    provenance.code_state.cache_clear()
