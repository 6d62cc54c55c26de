"""Ctrl-C, as a terminal sends it (SIGINT to `python -m bench train`), while a run trains: one line naming
what was interrupted and the command that resumes it, exit status 130, the run recorded as interrupted."""

from __future__ import annotations

import json

import pytest
from helpers.interrupts import ctrl_c_while_fitting
from helpers.runs import TINY_RUN

pytestmark = pytest.mark.slow  # each case is a `python -m bench train` subprocess
COMMAND = " ".join(["peft-bench", "train", *TINY_RUN])


def test_ctrl_c_on_a_run_prints_one_line_naming_its_folder_and_the_command_that_resumes_it(tmp_path):
    proc = ctrl_c_while_fitting(tmp_path / "results", *TINY_RUN)
    assert proc.returncode == 130, proc.stderr[-3000:]
    (run_dir,) = (tmp_path / "results" / "runs").iterdir()
    assert proc.stderr.splitlines() == [f"interrupted: run {run_dir}; the same command resumes it: {COMMAND}"]
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "interrupted"


def test_ctrl_c_on_a_sweep_prints_its_summary_and_the_interrupted_run_then_exits_non_zero(tmp_path):
    proc = ctrl_c_while_fitting(tmp_path / "results", "-m", *TINY_RUN, "seed=0,1")
    assert proc.returncode == 130, proc.stderr[-3000:]
    (sweep,) = (tmp_path / "results" / "sweeps").iterdir()
    (run_dir,) = (p for p in sweep.iterdir() if p.is_dir() and p.name != ".hydra")
    assert run_dir.name == "0_lora-rt_polarity-s0"
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "interrupted"
    summary, line = proc.stderr.splitlines()
    assert summary.startswith("sweep: 1 run did not complete (interrupted: 1), ") and str(run_dir) in summary
    assert line == (
        f"interrupted: sweep {sweep}, at run {run_dir}; the same command resumes it (its completed runs are "
        f"skipped): peft-bench train -m {' '.join(TINY_RUN)} seed=0,1"
    )
