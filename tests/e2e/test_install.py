"""A non-editable install works from any directory: it carries conf/ and results/reference/.

The wheel is built offline (``--no-index --no-build-isolation``: setuptools from this environment) from a
copy of the working tree, so no build folder is left in the repository.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.paths import ROOT


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout


@pytest.mark.slow
def test_non_editable_install_runs_from_another_directory(tmp_path):
    source, target, elsewhere, results = (tmp_path / d for d in ("src", "site", "elsewhere", "results"))
    files = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], ROOT).split("\0")
    for name in filter(None, files):
        src, dst = ROOT / name, source / name
        if not src.is_symlink() and not src.is_file():  # deleted in the working tree
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            dst.symlink_to(os.readlink(src))  # bench/conf, bench/reference: the wheel must follow them
        else:
            dst.write_bytes(src.read_bytes())
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
    run([*pip, "--target", str(target), str(source)], tmp_path)
    assert (target / "bench" / "conf" / "train.yaml").is_file() and not (
        target / "bench" / "conf"
    ).is_symlink()
    assert (target / "bench" / "py.typed").is_file()
    assert sorted(p.name for p in (target / "bench" / "reference").glob("*.csv")) == sorted(
        p.name for p in (ROOT / "results" / "reference").glob("*.csv")
    )

    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "WANDB_MODE": "disabled", "HYDRA_FULL_ERROR": "1"}
    env.pop("PEFT_BENCH_RESULTS", None)
    where = run([sys.executable, "-c", "import bench; print(bench.__file__)"], elsewhere, env)
    assert where.startswith(str(target))
    assert "variant: adalora, bitfit, dora" in run(
        [sys.executable, "-m", "bench", "train", "--help"], elsewhere, env
    )
    tiny = ["model=tiny", "task=rt_polarity", "task.max_train_samples=16", "task.max_eval_samples=16"]
    run(
        [sys.executable, "-m", "bench", "train", *tiny, "train.epochs=1", f"paths.results={results}"],
        elsewhere,
        env,
    )
    assert len(list(results.glob("runs/*/metrics.json"))) == 1
    table = run(
        [sys.executable, "-m", "bench", "leaderboard", "--with-reference", "--results", str(results)],
        elsewhere,
        env,
    )
    assert "rt_polarity" in table and "reference" in table  # our run and the published numbers
    assert not (elsewhere / "results").exists()
