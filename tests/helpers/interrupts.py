"""Ctrl-C on a ``python -m bench train`` subprocess at a known point: its training loop (``Fit.run``)
waits until the test sends SIGINT, as a terminal does on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers.runs import ROOT

# The subprocess: Python's own Ctrl-C handler (a test runner may start it with SIGINT ignored), and a
# Fit.run that says it has started (the marker file) and waits.
WAIT_IN_FIT = """
import pathlib, runpy, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
from bench.run import loop
marker = pathlib.Path(sys.argv.pop(1))
def waiting(self, *args, **kwargs):
    marker.touch()
    time.sleep(600)
loop.Fit.run = waiting
runpy.run_module("bench", run_name="__main__", alter_sys=True)
"""


def ctrl_c_while_fitting(results: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m bench train <args>`` (results in ``results``), sent SIGINT once its first run fits."""
    marker = results.parent / f"{results.name}.fitting"
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    env.update(PEFT_BENCH_RESULTS=str(results), WANDB_MODE="disabled")
    cmd = [sys.executable, "-c", WAIT_IN_FIT, str(marker), "train", *args]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert marker.exists(), f"the run ended before it trained: {stderr[-3000:]}"
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
