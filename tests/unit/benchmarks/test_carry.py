"""What travels to the GPU machine (bench.benchmarks.carry): the repository's files as git sends them, the
carried folder, and the tiny run's corpus copied into that folder's cache."""

import subprocess

from bench.benchmarks import carry


def git_repo(root):
    root.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    (root / ".gitignore").write_text(".gpu-carry/\nbig.bin\n")  # 20 bytes
    (root / "tracked.py").write_text("x" * 100)
    subprocess.run(["git", "add", "."], cwd=root, check=True)
    (root / "untracked.md").write_text("y" * 30)  # not ignored: it travels
    (root / "big.bin").write_bytes(b"z" * 10_000)  # ignored: it stays
    (root / "link").symlink_to("tracked.py")  # a link travels as a link
    return root


def test_the_repository_counts_what_git_would_send_and_the_carried_folder_counts_whole(tmp_path):
    root = git_repo(tmp_path / "repo")
    names = sorted(p.name for p in carry.repository_files(root))
    assert names == [".gitignore", "link", "tracked.py", "untracked.md"]
    wheels = root / ".gpu-carry"
    (wheels / "cache").mkdir(parents=True)
    (wheels / "a-1.0-py3-none-any.whl").write_bytes(b"w" * 1000)
    (wheels / "cache" / "corpus.txt").write_bytes(b"c" * 500)
    link = len("tracked.py")
    assert carry.carry_bytes(root, wheels) == {
        "repository": 20 + 100 + 30 + link,
        "carried": 1500,
        "total": 1650 + link,
    }
    assert carry.carry_bytes(root, root / "none")["carried"] == 0
    assert carry.CARRY_LIMIT == 64 * 2**20


def test_the_tiny_runs_corpus_is_copied_from_the_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "movieReviewSnippets_GroundTruth.txt").write_bytes(b"1\t2.5\tgood\r\n")
    monkeypatch.setenv("PEFT_BENCH_CACHE", str(cache))
    (copied,) = carry.copy_task_data("rt_polarity", tmp_path / "carry" / "cache")
    assert copied == tmp_path / "carry" / "cache" / "movieReviewSnippets_GroundTruth.txt"
    assert copied.read_bytes() == b"1\t2.5\tgood\r\n"
    assert carry.copy_task_data("sst2", tmp_path / "elsewhere") == []  # a Hub task: nothing to carry
    assert not (tmp_path / "elsewhere").exists()
