"""Seconds per phase of a run (bench.run.phase_times)."""

from __future__ import annotations

import time

import pytest

from bench.run.phase_times import PHASES, PhaseTimes


def test_a_phase_not_in_the_list_is_refused():
    with pytest.raises(KeyError, match="unknown phase 'warmup'; the phases are load_data, load_model"):
        PhaseTimes().add("warmup", 1.0)


def test_the_phases_add_up_and_run_is_the_wall_time_since_the_start():
    times = PhaseTimes()
    times.add("tokenize", 0.25)
    times.add("tokenize", 0.5)
    with times("evaluate"):
        time.sleep(0.01)
    seconds = times.as_dict()
    assert list(seconds) == [*PHASES, "run", "cpu"] and seconds["tokenize"] == 0.75
    assert 0.01 <= seconds["evaluate"] <= seconds["run"]


def test_cpu_is_the_process_cpu_time_over_the_run():
    times = PhaseTimes()
    time.sleep(0.05)  # wall time, no CPU time
    end = time.process_time() + 0.05
    while time.process_time() < end:  # CPU time
        pass
    seconds = times.as_dict()
    assert 0.05 <= seconds["cpu"] < seconds["run"]
