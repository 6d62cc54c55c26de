"""The sweep-overhead figure: a sweep's wall time split into startup, each run's phases and the rest, its
CPU utilisation and evaluation's share of each run."""

import json
import subprocess
import sys

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
    r = sweep_overhead.report(runs, 70.0, install=None, cpu_s=100.0, n_cores=2)
    assert r["outside_training_steps"] == pytest.approx(20 / 70, abs=1e-4) and r["met"] is False
    assert r["phases_s"] == {k: pytest.approx(v) for k, v in parts.items()}
    # 55 s: startup -7 s, so outside training steps (55 - 50) / 55 <= 15%
    assert sweep_overhead.report(runs, 55.0, install=None, cpu_s=100.0, n_cores=2)["met"] is True


def test_cpu_utilisation_is_cpu_time_over_wall_time_times_cores():
    runs = [
        {"phase_time_s": phases(train_steps=20.0, evaluate=3.0, run=26.0, cpu=50.0)},
        {"phase_time_s": phases(train_steps=30.0, evaluate=4.0, run=36.0, cpu=70.0)},
    ]
    r = sweep_overhead.report(runs, 70.0, install=None, cpu_s=126.0, n_cores=2)
    assert r["cpu_utilisation"] == pytest.approx(126 / 140) and r["cores"] == 2
    assert (r["cpu_s"], r["cpu_in_runs_s"]) == (126.0, 120.0)
    runs[1]["phase_time_s"].pop("cpu")  # a run recorded before the runs recorded their CPU time
    assert sweep_overhead.report(runs, 70.0, install=None, cpu_s=126.0, n_cores=4)["cpu_in_runs_s"] is None


def test_evaluation_share_over_the_runs_and_of_each_run():
    runs = [
        {"phase_time_s": phases(train_steps=20.0, evaluate=5.0, run=25.0)},  # 20%
        {"phase_time_s": phases(train_steps=70.0, evaluate=5.0, run=75.0)},  # 6.7%
    ]
    share = sweep_overhead.evaluation_share(runs)
    assert share == {"runs": 0.1, "min": pytest.approx(0.0667, abs=1e-4), "max": 0.2}
    r = sweep_overhead.report(runs, 110.0, install=None, cpu_s=200.0, n_cores=2)
    assert r["evaluation_share"] == share and r["evaluation_met"] is False  # one run above 15%
    runs[0]["phase_time_s"] |= {"evaluate": 3.0}  # 12%
    assert sweep_overhead.report(runs, 110.0, install=None, cpu_s=200.0, n_cores=2)["evaluation_met"] is True


def test_the_printed_report_names_utilisation_and_evaluation(capsys):
    runs = [{"phase_time_s": phases(train_steps=20.0, evaluate=5.0, run=25.0, cpu=45.0)}]
    sweep_overhead.print_report(sweep_overhead.report(runs, 30.0, install=12.0, cpu_s=48.0, n_cores=2))
    out = capsys.readouterr().out
    assert "CPU: 48 s over 30 s on 2 cores: 80.0% utilisation (in the runs: 45 s)" in out
    assert (
        "evaluation: 20.0% of the runs' time, 20.0% to 20.0% of one run (target <= 15% of each: missed)"
        in out
    )
    assert "install (once per machine, not in the sweep): 12 s" in out


def test_children_cpu_seconds_count_a_finished_child():
    before = sweep_overhead.children_cpu_seconds()
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import time\nend = time.process_time() + 0.2\nwhile time.process_time() < end: pass",
        ]
    )
    assert sweep_overhead.children_cpu_seconds() - before >= 0.2
    assert sweep_overhead.cores() >= 1


def test_a_run_records_its_phase_times(compose, tmp_path):
    process_cache.clear()  # else an earlier test's tokenized splits are reused: no time to tokenize
    run_dir = tiny_run(compose, tmp_path)
    times = json.loads((run_dir / "metrics.json").read_text())["phase_time_s"]
    assert set(times) == {*PHASES, "run", "cpu"}
    assert times["train_steps"] > 0 and times["evaluate"] > 0 and times["tokenize"] > 0 and times["cpu"] > 0
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
    assert r["cpu_s"] >= r["cpu_in_runs_s"] > 0 and 0 < r["cpu_utilisation"]
    assert (
        0 < r["evaluation_share"]["min"] <= r["evaluation_share"]["runs"] <= r["evaluation_share"]["max"] < 1
    )
    printed = capsys.readouterr().out
    assert "training steps" in printed and "outside training steps:" in printed and "utilisation" in printed
