"""Data-parallel runs (bench.run.distributed) on the CPU with gloo: torchrun and a 2-task submitit job train
what one process trains, with one run folder and one runs-CSV row (each rank's share of the batches:
tests/unit/run/test_distributed_shards.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers.runs import ROOT, bench_env, kill_when, read_rows
from omegaconf import OmegaConf
from safetensors.torch import load_file

# 75 examples in batches of 16: the last batch (11) splits 6 / 5, so unequal shards are weighted
RUN = [
    "model=tiny",
    "model.dropout=0",  # dropout masks are drawn per rank: without them the runs can be compared exactly
    "task=rt_polarity",
    "task.max_train_samples=75",
    "task.max_eval_samples=40",
    "train.epochs=2",
    "train.batch_size=16",
    "train.lr=0.01",
    "variant.r=4",
    "train.progress=off",
]
# float32 sums in another order (the gradient all-reduce): measured 9e-7 on the tiny model
WEIGHT_ATOL = 1e-5


ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # as torchrun sets it for its workers: the one-process run alike
PYTHON = [sys.executable, "-m"]
TORCHRUN = [*PYTHON, "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m"]


def train(results: Path, launch: list[str], *flags_and_overrides: str) -> Path:
    """``<launch> bench.run.train <flags and overrides> <RUN>``; returns the one run folder it wrote."""
    cmd = [*launch, "bench.run.train", *flags_and_overrides, *RUN]
    proc = subprocess.run(
        cmd, cwd=ROOT, env=bench_env(results, **ONE_THREAD), capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    (metrics_json,) = results.glob("**/metrics.json")
    return metrics_json.parent


def compare_with_one_process(one: Path, many: Path) -> None:
    m1, m2 = (json.loads((d / "metrics.json").read_text()) for d in (one, many))
    assert (m1["processes"], m2["processes"]) == (1, 2) and m2["status"] == "completed"
    assert m2["best"] == pytest.approx(m1["best"], abs=1e-6) and m2["steps"] == m1["steps"]
    h1, h2 = ([json.loads(x) for x in (d / "history.jsonl").read_text().splitlines()] for d in (one, many))
    assert [r["train_loss"] for r in h2] == pytest.approx([r["train_loss"] for r in h1], abs=1e-5)
    a1, a2 = (load_file(d / "adapter" / "adapter_model.safetensors") for d in (one, many))
    assert a1.keys() == a2.keys()
    for key in a1:
        torch.testing.assert_close(a2[key], a1[key], rtol=0, atol=WEIGHT_ATOL, msg=key)
    assert m2["train_samples_per_s"] and m2["hparams"] == m1["hparams"]


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> Path:
    return train(tmp_path_factory.mktemp("one"), PYTHON)


@pytest.mark.slow
def test_torchrun_two_processes_train_what_one_trains(one_process, tmp_path):
    many = train(tmp_path, TORCHRUN)
    compare_with_one_process(one_process, many)
    assert len(read_rows(tmp_path / "runs.csv")) == 1
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [many.name]  # rank 1 wrote nothing here
    assert OmegaConf.load(many / "config.yaml").train.batch_size == 16  # the global batch


@pytest.mark.slow
def test_a_two_task_submitit_job_is_one_distributed_run(one_process, tmp_path):
    many = train(tmp_path, PYTHON, "-m", "hydra/launcher=submitit_local", "hydra.launcher.tasks_per_node=2")
    compare_with_one_process(one_process, many)
    assert len(read_rows(tmp_path / "runs.csv")) == 1


def test_the_slurm_ddp_example_runs_one_process_per_gpu(compose):
    launcher = compose(["hydra/launcher=slurm_ddp"], return_hydra_config=True).hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.tasks_per_node == launcher.gpus_per_node == 4 and launcher.max_num_timeout == 3
    eight = compose(["hydra/launcher=slurm_ddp", "hydra.launcher.gpus_per_node=8"], return_hydra_config=True)
    assert eight.hydra.launcher.tasks_per_node == 8
    two = compose(["hydra/launcher=slurm", "hydra.launcher.gpus_per_node=2"], return_hydra_config=True)
    assert two.hydra.launcher.tasks_per_node == 2  # any GPU count above one is a DDP run


def test_torchrun_of_a_sweep_is_refused_in_one_line(tmp_path):
    env = bench_env(tmp_path, **ONE_THREAD) | {"RANK": "0", "WORLD_SIZE": "2"}
    cmd = [*PYTHON, "bench.run.train", "-m", *RUN]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "error: torchrun runs one run, not a sweep (-m)" in proc.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_a_killed_torchrun_run_resumes_from_rank_0s_checkpoint_bit_identical(tmp_path):
    """SIGKILL of the whole torchrun group once rank 0 has saved a checkpoint; the same command resumes
    every rank from it and ends with the weights of an uninterrupted 2-process run."""
    longer = ["task.max_train_samples=400", "train.batch_size=4", "train.checkpoint_every_steps=20"]
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    cmd = [*TORCHRUN, "bench.run.train", *RUN, *longer]
    kill_when(cmd, killed, lambda: bool(list(killed.glob("checkpoints/*/step-*"))))
    time.sleep(1.1)  # the rerun gets its own timestamped run folder
    rerun = subprocess.run(
        cmd, cwd=ROOT, env=bench_env(killed, **ONE_THREAD), capture_output=True, text=True, timeout=600
    )
    assert rerun.returncode == 0 and "resuming from checkpoint" in rerun.stdout + rerun.stderr
    subprocess.run(
        cmd, cwd=ROOT, env=bench_env(clean, **ONE_THREAD), check=True, capture_output=True, timeout=600
    )
    (resumed,) = [p for p in killed.glob("runs/*/adapter/adapter_model.safetensors")]
    (uninterrupted,) = clean.glob("runs/*/adapter/adapter_model.safetensors")
    a, b = load_file(resumed), load_file(uninterrupted)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert len(read_rows(killed / "runs.csv")) == 1
