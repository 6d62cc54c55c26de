"""The results index (bench.results.index): resume's lookup, appended by runs, rebuilt when lost or damaged,
never trusted without the run folder's metrics.json; a truncated metrics.json is named and its run reruns;
parallel runs never interleave lines. No training: run folders are written by hand, as the runner writes
them (a line ``running``, metrics.json, then the line with its status)."""

from __future__ import annotations

import json
import multiprocessing as mp
import shutil
from pathlib import Path

import pytest
from helpers.notices import notices

from bench.results.index import COMPLETED, INDEX, RUNNING, completed_run, record

WORKERS, RUNS = 4, 30


def write_metrics(folder: Path, cfg_hash: str, status: str) -> None:
    """metrics.json as bench.results.run_folder.write_json writes it (a temporary file, then renamed)."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "metrics.json.tmp"
    tmp.write_text(json.dumps({"config_hash": cfg_hash, "status": status, "best": {"x": 1}}, indent=2))
    tmp.replace(folder / "metrics.json")


def run(root: Path, rel: str, cfg_hash: str, status: str = COMPLETED) -> Path:
    """A run as the runner makes it: its line running, its metrics.json, then its line with the status."""
    folder = root / rel
    folder.mkdir(parents=True, exist_ok=True)
    record(root, folder, cfg_hash, RUNNING)
    write_metrics(folder, cfg_hash, status)
    record(root, folder, cfg_hash, status)
    return folder


def lines(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / INDEX).read_text().splitlines()]


def test_only_completed_runs_count(tmp_path):
    run(tmp_path, "sweeps/a/0_x", "h1", "failed")
    run(tmp_path, "sweeps/a/1_x", "h2", "diverged")
    run(tmp_path, "sweeps/a/2_x", "h3", "oom")
    (tmp_path / "sweeps/a/3_killed").mkdir()  # a run killed before it wrote metrics.json
    assert all(completed_run(tmp_path, h) is None for h in ["h1", "h2", "h3", "h4"])
    run(tmp_path, "sweeps/b/0_x", "h2")
    assert completed_run(tmp_path, "h2") == tmp_path / "sweeps/b/0_x"
    assert completed_run(tmp_path / "nowhere", "h2") is None


def test_runs_append_their_lines_relative_to_the_results_folder(tmp_path, caplog):
    run(tmp_path, "runs/a", "h1")
    record(tmp_path, tmp_path.parent / "elsewhere", "h9", RUNNING)  # outside the results folder: not indexed
    assert lines(tmp_path) == [
        {"config_hash": "h1", "status": RUNNING, "run": "runs/a"},
        {"config_hash": "h1", "status": COMPLETED, "run": "runs/a"},
    ]
    assert completed_run(tmp_path, "h1") == tmp_path / "runs/a" and completed_run(tmp_path, "h2") is None
    moved = shutil.move(tmp_path, tmp_path.parent / "moved")  # a results folder moved (or cloned)
    assert completed_run(moved, "h1") == Path(moved) / "runs/a"
    assert notices(caplog) == ""  # nothing to rebuild or add


def test_a_missing_index_is_rebuilt_from_the_run_folders(tmp_path, caplog):
    """A results folder from before the index (committed to git, say): rebuilt on first use, once."""
    write_metrics(tmp_path / "compare/rt/lora-s0", "h1", COMPLETED)
    write_metrics(tmp_path / "compare/rt/lora-s1", "h2", "failed")
    write_metrics(tmp_path / "compare/rt/.hydra/x", "h3", COMPLETED)  # hidden folders are not searched
    assert completed_run(tmp_path, "h1") == tmp_path / "compare/rt/lora-s0"
    err = notices(caplog)
    assert err == (
        f"peft-bench: rebuilt the results index {tmp_path / INDEX} from 2 run folder(s): it was missing\n"
    )
    assert {r["run"]: r["status"] for r in lines(tmp_path)} == {
        "compare/rt/lora-s0": COMPLETED,
        "compare/rt/lora-s1": "failed",
    }
    assert completed_run(tmp_path, "h2") is None and completed_run(tmp_path, "h3") is None
    assert notices(caplog) == ""
    assert not (tmp_path / f"{INDEX}.tmp").exists()  # written aside, then renamed


def test_a_new_results_folder_gets_its_index_quietly(tmp_path, caplog):
    assert completed_run(tmp_path, "h1") is None
    assert (tmp_path / INDEX).read_text() == "" and notices(caplog) == ""


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ('{"config_hash": "h2", "sta', "line 3 does not parse (cut short by a crash?)"),  # a crash mid-append
        ('{"config_hash": "h2"}\n', "line 3 is not a record of a run folder"),
        ('{"config_hash": "h2", "status": "running", "run": "x"}, {}\n', "line 3 does not parse"),
    ],
    ids=["truncated", "not-a-record", "two-on-a-line"],
)
def test_a_damaged_index_is_rebuilt_and_named(tmp_path, caplog, damage, reason):
    run(tmp_path, "runs/a", "h1")
    write_metrics(tmp_path / "runs/b", "h2", COMPLETED)  # its lines were lost
    with (tmp_path / INDEX).open("a") as f:
        f.write(damage)
    assert completed_run(tmp_path, "h2") == tmp_path / "runs/b"
    err = notices(caplog)
    assert err.startswith(f"peft-bench: rebuilt the results index {tmp_path / INDEX} from 2 run folder(s): ")
    assert reason in err and err.count("\n") == 1
    assert completed_run(tmp_path, "h1") == tmp_path / "runs/a" and notices(caplog) == ""


def test_a_stale_line_is_not_trusted(tmp_path):
    """The index says completed; the folder says otherwise (deleted, or rerun and failed)."""
    run(tmp_path, "runs/a", "h1")
    run(tmp_path, "runs/b", "h2")
    shutil.rmtree(tmp_path / "runs/a")
    write_metrics(tmp_path / "runs/b", "h2", "failed")  # rerun in place, killed before its line
    assert completed_run(tmp_path, "h1") is None and completed_run(tmp_path, "h2") is None
    assert lines(tmp_path)[-2:] == [  # corrected, so later lookups read nothing
        {"config_hash": None, "status": "missing", "run": "runs/a"},
        {"config_hash": "h2", "status": "failed", "run": "runs/b"},
    ]


def test_a_kill_between_metrics_json_and_its_line_still_skips_the_run(tmp_path):
    """The line stays ``running``; the lookup reads metrics.json and finds the run completed."""
    folder = tmp_path / "compare/rt/lora-s0"  # a stable folder that failed before
    run(tmp_path, "compare/rt/lora-s0", "h1", "failed")
    record(tmp_path, folder, "h1", RUNNING)  # the rerun...
    write_metrics(folder, "h1", COMPLETED)  # ... completes and is killed before its line
    assert completed_run(tmp_path, "h1") == folder
    record(tmp_path, tmp_path / "runs/killed", "h2", RUNNING)  # killed before its metrics.json
    assert completed_run(tmp_path, "h2") is None


def test_a_run_folder_the_index_lacks_is_found_and_added(tmp_path, caplog):
    """Copied in or pulled with git into a results folder that has an index."""
    run(tmp_path, "runs/a", "h1")
    write_metrics(tmp_path / "compare/rt/lora-s0", "h2", COMPLETED)
    assert completed_run(tmp_path, "h2") == tmp_path / "compare/rt/lora-s0"
    assert notices(caplog) == (
        f"peft-bench: added 1 run folder(s) to the results index {tmp_path / INDEX} "
        "(made without it: from before it, or copied or pulled in)\n"
    )
    assert lines(tmp_path)[-1] == {"config_hash": "h2", "status": COMPLETED, "run": "compare/rt/lora-s0"}
    assert completed_run(tmp_path, "h2") == tmp_path / "compare/rt/lora-s0"
    assert notices(caplog) == ""


@pytest.mark.parametrize("indexed", [True, False], ids=["indexed", "rebuild-scan"])
def test_a_truncated_metrics_json_is_named_once_and_its_run_reruns(tmp_path, caplog, indexed):
    folder = run(tmp_path, "runs/a", "h1") if indexed else tmp_path / "runs/a"
    write_metrics(folder, "h1", COMPLETED)
    text = (folder / "metrics.json").read_text()
    (folder / "metrics.json").write_text(text[: len(text) // 2])  # cut short (a copy or a crash)
    assert completed_run(tmp_path, "h1") is None  # not trusted: the run runs again
    warning = f"peft-bench: {folder / 'metrics.json'} does not parse (truncated?): not trusted, its run will"
    assert f"{warning} run again\n" in notices(caplog)
    assert lines(tmp_path)[-1] == {"config_hash": None, "status": "unreadable", "run": "runs/a"}
    assert completed_run(tmp_path, "h1") is None and notices(caplog) == ""  # named once
    run(tmp_path, "runs/a", "h1")  # rerun in place
    assert completed_run(tmp_path, "h1") == folder


def start_runs(root: str, worker: int, start) -> None:
    """A sweep worker: RUNS runs, each its line running, metrics.json, its line; a lookup before each."""
    root_path = Path(root)
    start.wait(timeout=240)  # every worker starts at the same moment
    for i in range(RUNS):
        assert completed_run(root_path, f"h{worker}-{i}") is None
        run(root_path, f"sweeps/w{worker}/{i}_run", f"h{worker}-{i}", COMPLETED if i % 3 else "failed")


def test_parallel_runs_never_interleave_lines(tmp_path):
    ctx = mp.get_context("spawn")  # fresh interpreters, like joblib's workers
    start = ctx.Barrier(WORKERS)
    procs = [ctx.Process(target=start_runs, args=(str(tmp_path), w, start)) for w in range(WORKERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * WORKERS
    records = lines(tmp_path)  # every line parses
    assert len(records) == 2 * WORKERS * RUNS
    for w in range(WORKERS):
        mine = [(r["run"], r["status"]) for r in records if r["run"].startswith(f"sweeps/w{w}/")]
        assert mine == [
            (f"sweeps/w{w}/{i}_run", status)
            for i in range(RUNS)
            for status in (RUNNING, COMPLETED if i % 3 else "failed")
        ]
    done = {(w, i) for w in range(WORKERS) for i in range(RUNS) if i % 3}
    for w in range(WORKERS):
        for i in range(RUNS):
            found = completed_run(tmp_path, f"h{w}-{i}")
            assert found == (tmp_path / f"sweeps/w{w}/{i}_run" if (w, i) in done else None)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.is_dir()) == [INDEX, f"{INDEX}.lock"]
