"""The train command (bench.run.train): the score a sweeper maximises, an error as one line, and what
Ctrl-C prints (end to end: tests/e2e/test_interrupts.py)."""

from __future__ import annotations

import tempfile

import pytest

from bench.run.train import RunInterrupted, interrupted, main_score, one_line, quiet_rank_overrides


def test_main_score_is_the_selection_metric_and_none_unless_completed():
    """What a sweeper (Optuna) maximises is the dev score, never the test one."""
    best = {"dev/accuracy": 0.75, "test/accuracy": 0.9}
    run = {"status": "completed", "selection_metric": "dev/accuracy", "best": best}
    assert main_score(run) == 0.75
    for status in ["diverged", "failed", "oom"]:
        assert main_score(run | {"status": status}) is None
    assert main_score(run | {"best": {}}) is None


def test_an_error_is_one_line_with_its_cause_and_where_the_traceback_is():
    try:
        try:
            raise OSError("disk\nfull")
        except OSError as cause:
            raise ValueError("cannot write") from cause
    except ValueError as e:
        line = one_line(e, "traceback in run/error.txt")
    assert line == "error: cannot write: disk full (traceback in run/error.txt; HYDRA_FULL_ERROR=1 prints it)"


def test_an_error_whose_traceback_was_written_nowhere_names_no_file():
    """Another torchrun rank writes nothing: its line names no error.txt."""
    line = one_line(ValueError("bad"), None)
    assert line == "error: bad (HYDRA_FULL_ERROR=1 prints the traceback)"


def test_an_unknown_option_lists_the_groups_options():
    line = one_line(Exception("Could not find 'variant/lorra'"), "no run started")
    assert line.startswith("error: unknown variant 'lorra'; available: ") and "lora, loraplus" in line


def test_rank_0_and_a_single_process_keep_their_run_folder(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    assert quiet_rank_overrides() == []
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setattr("sys.argv", ["bench", "train"])
    assert "hydra.output_subdir=null" in quiet_rank_overrides()
    (run_dir,) = [o.split("=", 1)[1] for o in quiet_rank_overrides() if o.startswith("hydra.run.dir=")]
    assert run_dir == tempfile.gettempdir()  # exists: Hydra makes no folder, none is left behind
    monkeypatch.setattr("sys.argv", ["bench", "train", "-m"])
    with pytest.raises(SystemExit, match="torchrun runs one run, not a sweep"):
        quiet_rank_overrides()


def test_ctrl_c_names_the_run_or_says_none_had_started_with_the_command_that_resumes_it():
    command = "peft-bench train variant=dora"
    assert interrupted(RunInterrupted("results/runs/x"), command) == [
        "interrupted: run results/runs/x; the same command resumes it: peft-bench train variant=dora"
    ]
    assert interrupted(KeyboardInterrupt(), command) == [
        "interrupted before a run started; run again: peft-bench train variant=dora"
    ]
