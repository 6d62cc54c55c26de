"""The runner and the run folder: a folder holding another run is refused before anything is written, a
config error leaves no run behind (its traceback in <results>/errors/), an output that cannot be written
is refused before the model loads, a sink failing after training records the run failed with its
error.txt, and a run holds its folder's lock while it runs."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
from helpers.runs import TINY_RUN, tiny_run
from omegaconf import OmegaConf

from bench.results import index
from bench.results.run_folder import RunFolder, error_log
from bench.results.runs_csv import RunsCsv
from bench.run import distributed, loop, process_cache, runner


def files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def index_lines(results: Path) -> list[tuple[str, str]]:
    path = results / index.INDEX
    lines = path.read_text().splitlines() if path.is_file() else []
    return [(r["run"], r["status"]) for r in map(json.loads, lines)]


def run_in(compose, results: Path, run_dir: Path, *overrides: str) -> runner.Outcome:
    return runner.run(compose([*TINY_RUN, f"paths.results={results}", *overrides]), run_dir)


def test_a_folder_holding_another_run_is_refused_and_left_as_it_was(compose, tmp_path):
    run_dir = tiny_run(compose, tmp_path)  # lora-rt_polarity-s0, completed, with its adapter
    other = RunFolder(run_dir).metrics()["config_hash"]
    before, csv_before, index_before = (
        files(tmp_path / "runs"),
        (tmp_path / "runs.csv").read_bytes(),
        index_lines(tmp_path),
    )
    with pytest.raises(FileExistsError) as e:
        run_in(compose, tmp_path, run_dir, "seed=1")
    assert str(e.value).startswith(
        f"the run folder {run_dir} holds another run (lora-rt_polarity-s0, completed, config {other}); "
    )
    assert "choose another hydra.run.dir" in str(e.value)
    assert files(tmp_path / "runs") == before  # metrics.json, adapter, predictions: untouched
    assert (tmp_path / "runs.csv").read_bytes() == csv_before and index_lines(tmp_path) == index_before
    log = error_log(tmp_path, run_dir)
    assert log == tmp_path / "errors" / "runs" / "tiny.txt"
    assert runner.where(e.value) == f"no run started; traceback in {log}"
    assert "FileExistsError" in log.read_text()
    forced = run_in(compose, tmp_path, run_dir, "force=true")  # its own configuration may replace it
    assert forced.skipped is None and forced.metrics["status"] == "completed"


def test_a_killed_runs_folder_is_refused_to_another_config_and_rerun_by_its_own(compose, tmp_path):
    run_dir = tmp_path / "runs" / "tiny"
    run_dir.mkdir(parents=True)  # a run killed before its end left its config.yaml only
    killed = compose([*TINY_RUN, f"paths.results={tmp_path}"])
    RunFolder(run_dir).write_config(OmegaConf.to_yaml(killed, resolve=True))
    with pytest.raises(FileExistsError, match=r"holds another run \(lora-rt_polarity-s0, started and never"):
        run_in(compose, tmp_path, run_dir, "train.lr=0.01")
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.yaml"]
    assert run_in(compose, tmp_path, run_dir).metrics["status"] == "completed"


@pytest.mark.parametrize(
    ("override", "message"),
    [("variant.r=0", "r=0"), ("train.epochs=0", "train.epochs=0 is not valid")],
)
def test_a_config_error_leaves_no_run_behind(compose, tmp_path, override, message):
    """No config.yaml, metrics.json, index line or runs-CSV row (the leaderboard would show a failed
    row); the traceback goes to <results>/errors/, which the error's note names."""
    run_dir = tmp_path / "runs" / "tiny"
    with pytest.raises(ValueError, match=message) as e:
        run_in(compose, tmp_path, run_dir, override)
    assert not run_dir.exists() and not (tmp_path / "runs.csv").exists() and index_lines(tmp_path) == []
    log = error_log(tmp_path, run_dir)
    assert runner.where(e.value) == f"no run started; traceback in {log}"
    assert "Traceback (most recent call last)" in log.read_text() and message in log.read_text()


@pytest.mark.parametrize("output", ["runs.csv", ".runs.csv.lock", ".index.jsonl"])
def test_an_output_that_cannot_be_written_is_refused_before_the_model_loads(
    compose, tmp_path, monkeypatch, output
):
    """A folder where the file should be: unwritable, whoever runs the tests (root writes read-only
    files)."""

    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded before the outputs were checked")

    process_cache.clear()
    monkeypatch.setattr(process_cache, "load_model", no_load)
    (tmp_path / output).mkdir()
    run_dir = tmp_path / "runs" / "tiny"
    with pytest.raises(OSError, match=rf"cannot write the .* {tmp_path / output}: Is a directory") as e:
        run_in(compose, tmp_path, run_dir)
    assert not run_dir.exists()
    assert runner.where(e.value).startswith("no run started; traceback in ")


def test_a_sink_failing_after_training_records_the_run_failed_and_its_error_txt(
    compose, tmp_path, monkeypatch
):
    """The runs CSV became unwritable during training: metrics.json says failed (not completed), with
    the error; error.txt exists where the note says; resume does not take it for a completed run."""

    def unwritable(self, metrics):
        raise PermissionError(errno.EACCES, "Permission denied", str(self.path))

    monkeypatch.setattr(RunsCsv, "finish", unwritable)
    run_dir = tmp_path / "runs" / "tiny"
    with pytest.raises(PermissionError) as e:
        run_in(compose, tmp_path, run_dir)
    m = RunFolder(run_dir).metrics()
    assert m["status"] == "failed" and "Permission denied" in m["error"] and "RunsCsv" in m["error"]
    assert m["best"]  # the results it had are kept
    assert runner.where(e.value) == f"traceback in {run_dir / 'error.txt'}"
    assert "PermissionError" in (run_dir / "error.txt").read_text()
    assert not (run_dir / ".running.lock").exists()  # a run that failed holds its folder no more
    assert index_lines(tmp_path)[-1] == ("runs/tiny", "failed")
    assert index.completed_run(tmp_path, m["config_hash"]) is None


def test_a_run_holds_its_folder_while_it_runs(compose, tmp_path, monkeypatch):
    run_dir = tmp_path / "runs" / "tiny"
    seen = []
    real = loop.Fit.run

    def spy(self, *args, **kwargs):
        seen.append((RunFolder(run_dir).is_running(), RunFolder(run_dir).is_leftover()))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(loop.Fit, "run", spy)
    run_in(compose, tmp_path, run_dir)
    assert seen == [(True, False)]  # running: never taken for a killed run's leftover
    assert not RunFolder(run_dir).is_running() and not (run_dir / ".running.lock").exists()


def test_another_rank_writes_no_traceback_and_names_none(tmp_path):
    """Under torchrun only rank 0 writes: another rank's error names no error.txt."""
    for rank, started, expected in [
        (1, True, None),
        (1, False, "no run started"),
        (0, True, f"traceback in {tmp_path / 'error.txt'}"),
    ]:
        e = ValueError("bad")
        runner.keep_traceback(e, distributed.World(rank=rank, size=2), tmp_path / "error.txt", started)
        assert runner.where(e) == expected
        assert (tmp_path / "error.txt").exists() == (rank == 0)
