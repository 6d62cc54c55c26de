"""The sweep-overhead figure: a sweep's wall time split into startup, each run's phases and the rest."""

import json

import pytest
from helpers.runs import TINY_RUN, tiny_run

from bench.benchmarks import sweep_overhead
from bench.run import process_cache
from bench.run.phase_times import PHASES


def phases(**seconds: float) -> dict[str, float]:
    return dict.fromkeys(PHASES, 0.0) | seconds


def test_the_split_puts_time_outside_runs_in_startup_and_unphased_time_in_the_rest():
    runs = [
        {"phase_time_s": phases(load_model=1.0, tokenize=0.5, train_steps=20.0, evaluate=3.0, run=26.0)},
        {"phase_time_s": phases(load_model=0.5, train_steps=30.0, evaluate=4.0, run=36.0)},
    ]
    parts = sweep_overhead.split(runs, wall=70.0)
    assert parts["startup"] == pytest.approx(8.0) and parts["train_steps"] == pytest.approx(50.0)
    assert parts["other"] == pytest.approx(62.0 - 59.0)
    assert sum(parts.values()) == pytest.approx(70.0)
    r = sweep_overhead.report(parts, 70.0, 2, install=None)
    assert r["outside_training_steps"] == pytest.approx(20 / 70, abs=1e-4) and r["met"] is False
    assert sweep_overhead.report(parts, 55.0, 2, install=None)["met"] is True  # 5 / 55 <= 15%


def test_a_run_records_its_phase_times(compose, tmp_path):
    process_cache.clear()  # else an earlier test's tokenized splits are reused: no time to tokenize
    run_dir = tiny_run(compose, tmp_path)
    times = json.loads((run_dir / "metrics.json").read_text())["phase_time_s"]
    assert set(times) == {*PHASES, "run"}
    assert times["train_steps"] > 0 and times["evaluate"] > 0 and times["tokenize"] > 0
    assert sum(times[p] for p in PHASES) <= times["run"]


def test_a_non_empty_results_folder_is_refused(tmp_path, capsys):
    (tmp_path / "old").mkdir()
    with pytest.raises(SystemExit):
        sweep_overhead.main(["--results", str(tmp_path)])
    assert (
        f"--results {tmp_path} is not empty: its runs would resume instead of training"
        in capsys.readouterr().err
    )


@pytest.mark.slow
def test_the_figure_of_a_two_run_sweep(tmp_path, capsys):
    out = tmp_path / "split.json"
    overrides = [*TINY_RUN, "variant=lora,head", "hydra/launcher=basic"]
    sweep_overhead.main(["--results", str(tmp_path / "r"), "--json", str(out), *overrides])
    r = json.loads(out.read_text())
    assert r["runs"] == 2 and r["phases_s"]["startup"] > 0 and r["phases_s"]["train_steps"] > 0
    assert sum(r["phases_s"].values()) == pytest.approx(r["wall_s"], abs=0.05)
    printed = capsys.readouterr().out
    assert "training steps" in printed and "outside training steps:" in printed
