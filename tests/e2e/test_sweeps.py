"""Sweeps: launchers (joblib, submitit_local), experiment grids, Optuna, resume after a killed sweep,
and isolation (a run that diverges, runs out of memory or raises is recorded and the sweep goes on).

The slow tests run real `python -m bench train -m ...` subprocesses on the tiny model and real rt_polarity
data (32 training sentences, 1 epoch: a run takes about a second once the process has started).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from helpers.runs import HEAD_PARAMS, ROOT, TINY_RUN, bench_env, kill_when, lora_params
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

import variants
from bench.analysis import runs_table, selection
from bench.analysis.configurations import tuned_board
from bench.config import hashing
from bench.config.schemas import TrainConfig
from bench.config.store import CONF_DIR, selected_lr
from bench.plural import plural
from bench.results.columns import RUNS_COLUMNS
from bench.run import runner

TINY = [*TINY_RUN, "train.batch_size=16"]


def has_optuna() -> bool:
    try:
        import hydra_plugins.hydra_optuna_sweeper  # noqa: F401
    except ImportError:
        return False
    return True


def sweep_cmd(*overrides: str) -> list[str]:
    """`python -m bench train -m <TINY> <overrides>`, an override replacing TINY's value for the same key."""
    args = {a.split("=", 1)[0]: a for a in [*TINY, *overrides]}
    return [sys.executable, "-m", "bench", "train", "-m", *args.values()]


def sweep(
    results_dir: Path, *overrides: str, timeout: int = 600, failed: int = 0
) -> subprocess.CompletedProcess:
    """Run `sweep_cmd(*overrides)` with results in `results_dir`; asserts it exits 0, or with ``failed``
    runs not completed, 1 with the one-line summary that counts them."""
    cmd = sweep_cmd(*overrides)
    proc = subprocess.run(
        cmd, cwd=ROOT, env=bench_env(results_dir), capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == (1 if failed else 0), proc.stdout[-2000:] + proc.stderr[-4000:]
    if failed:
        summary = proc.stderr.strip().splitlines()[-1]
        assert summary.startswith(f"sweep: {plural(failed, 'run')} did not complete ("), summary
    return proc


def sweep_dirs(results_dir: Path) -> list[Path]:
    return sorted(p for p in (results_dir / "sweeps").iterdir() if p.is_dir())


def run_metrics(sweep_dir: Path) -> dict[str, dict]:
    """{run folder name: metrics.json} for every run folder of a sweep that has one, in job order."""
    paths = sorted(sweep_dir.glob("*/metrics.json"), key=lambda p: int(p.parent.name.split("_")[0]))
    return {p.parent.name: json.loads(p.read_text()) for p in paths}


def csv_rows(results_dir: Path) -> list[dict]:
    path = results_dir / "runs.csv"
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == RUNS_COLUMNS
        return list(reader)


def kill_once_a_run_completed(results_dir: Path, grid: list[str], pattern: str) -> None:
    """Start `sweep_cmd(*grid)` and SIGKILL its process group once a ``pattern`` metrics.json completed."""

    def completed() -> bool:
        return any(json.loads(p.read_text()).get("status") == "completed" for p in results_dir.glob(pattern))

    kill_when(sweep_cmd(*grid), results_dir, completed, poll_s=0.05)


@pytest.fixture
def compose_cfg(compose):
    """compose_cfg(*overrides): conftest's compose of train.yaml, hydra node included."""
    return lambda *overrides: compose(overrides, return_hydra_config=True)


# ---------------------------------------------------------------- configs (fast)

# The LoRA paper (Hu et al., 2021, arXiv:2106.09685), Table 9, RoBERTa-base: task -> (batch size, epochs, lr)
LORA_PAPER = {
    "mnli": (16, 30, 5e-4),
    "sst2": (16, 60, 5e-4),
    "mrpc": (16, 30, 4e-4),
    "cola": (32, 80, 4e-4),
    "qnli": (32, 25, 4e-4),
    "qqp": (16, 25, 5e-4),
    "rte": (32, 80, 5e-4),
    "stsb": (16, 40, 4e-4),
}
# Derived as the experiments derive them, so that a new task file or plugin variant joins with no edit.
OFFLINE_TASKS = sorted(p.stem for p in (CONF_DIR / "task").glob("*.yaml") if "source: vader" in p.read_text())
ALL_VARIANTS = variants.available()


@pytest.mark.parametrize("task", sorted(LORA_PAPER))
def test_glue_paper_experiment_uses_the_per_task_recipe(task, compose_cfg):
    cfg = compose_cfg("experiment=glue_paper_roberta_base", f"task={task}")
    assert (cfg.model.name, cfg.model.max_length, cfg.variant.name) == ("roberta_base", 512, "lora")
    assert (cfg.variant.r, cfg.variant.alpha, cfg.variant.targets) == (8, 8, "attention")
    assert cfg.train.warmup_ratio == 0.06
    assert (cfg.train.batch_size, cfg.train.epochs, cfg.variant.lr) == LORA_PAPER[task]
    params = cfg.hydra.sweeper.params
    assert params.task.split(",") == ["mnli", "sst2", "mrpc", "cola", "qnli", "qqp", "rte", "stsb"]
    assert params.seed.split(",") == ["0", "1", "2", "3", "4"]


def test_paper_recipes_apply_only_inside_the_paper_experiment_and_the_command_line_wins(compose_cfg):
    lora = variants.get("lora").Config()
    cfg = compose_cfg("variant=lora", "task=cola")  # the ordinary budget, not the paper's 80 epochs
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.variant.lr) == (
        TrainConfig().epochs,
        TrainConfig().batch_size,
        lora.lr,
    )
    paper = ["experiment=glue_paper_roberta_base", "task=cola"]
    assert compose_cfg(*paper).train.epochs == 80
    assert compose_cfg(*paper, "variant=dora").train.epochs == TrainConfig().epochs  # no dora recipe
    cfg = compose_cfg(*paper, "train.epochs=2", "variant.lr=1e-3")
    assert (cfg.train.epochs, cfg.variant.lr, cfg.train.batch_size) == (2, 1e-3, 32)


def test_demo_all_and_offline_suite_sweep_every_registered_variant_plugins_included(compose_cfg, monkeypatch):
    class Plugin(variants.Variant):
        name = "zz_plugin"

    monkeypatch.setitem(variants.registry._REGISTRY, Plugin.name, Plugin)
    try:
        for experiment in ["demo_all", "offline_suite"]:
            params = compose_cfg(f"experiment={experiment}").hydra.sweeper.params
            assert params.variant.split(",") == [*ALL_VARIANTS, "zz_plugin"]
        assert "zz_plugin" not in compose_cfg("experiment=demo").hydra.sweeper.params.variant.split(",")
    finally:  # composing stored the plugin's schema: keep it out of later tests' option lists
        ConfigStore.instance().repo["variant"].pop("zz_plugin.yaml", None)


def test_the_demo_sweeps_the_six_methods_and_two_baselines_once():
    demo = OmegaConf.load(CONF_DIR / "experiment" / "demo.yaml").hydra.sweeper.params.variant.split(",")
    assert len(demo) == len(set(demo)) == 8
    assert set(demo) == {"lora", "qlora", "dora", "adalora", "loraplus", "vera", "full", "head"}
    assert set(demo) <= set(ALL_VARIANTS)


@pytest.mark.parametrize("variant", ["lora", "head"])
def test_demo_all_has_the_demo_settings_so_the_demo_runs_resume_there(config_hash_of, variant):
    demo = config_hash_of("experiment=demo", f"variant={variant}")
    assert config_hash_of("experiment=demo_all", f"variant={variant}") == demo
    assert config_hash_of("experiment=offline_suite", f"variant={variant}") != demo  # the hash sees the lr


def test_offline_suite_covers_every_offline_task_and_variant(compose_cfg):
    cfg = compose_cfg("experiment=offline_suite")
    params = cfg.hydra.sweeper.params
    assert params.task.split(",") == OFFLINE_TASKS
    assert params.variant.split(",") == ALL_VARIANTS
    assert params.seed.split(",") == ["0", "1", "2"]
    assert (cfg.model.name, cfg.model.max_length, cfg.train.epochs) == ("minilm", 64, 2)


def test_rank_sweep_grid(compose_cfg):
    cfg = compose_cfg("experiment=rank_sweep")
    params = cfg.hydra.sweeper.params
    assert params.variant.split(",") == ["lora", "dora", "loraplus"]
    assert [int(r) for r in params["variant.r"].split(",")] == [1, 2, 4, 8, 16, 32, 64]
    assert (cfg.model.name, cfg.task.name, cfg.experiment_name) == ("minilm", "rt_polarity", "rank_sweep")


@pytest.fixture
def config_hash_of(compose_cfg):
    def hash_of(*overrides: str) -> str:
        """The hash runner.run computes for this composition (the job config, without the hydra node)."""
        cfg = compose_cfg(*overrides)
        job = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
        return hashing.config_hash(OmegaConf.to_container(job, resolve=True))

    return hash_of


@pytest.mark.parametrize("variant", ["head", "lora", "vera"])
def test_offline_suite_and_rank_sweep_share_runs(variant, config_hash_of):
    """Same settings, same config hash: a run done by one experiment is skipped (resume) by the other."""
    suite = config_hash_of("experiment=offline_suite", "task=rt_polarity", f"variant={variant}", "seed=0")
    if variant == "lora":
        assert suite == config_hash_of("experiment=rank_sweep", "variant=lora", "variant.r=8", "seed=0")
    suite_args = ("experiment=offline_suite", "task=rt_polarity", f"variant={variant}")
    other_seed = config_hash_of(*suite_args, "seed=1")
    assert suite != other_seed
    # where to log and how to show progress are not part of what a run computes
    assert suite == config_hash_of(
        "experiment=offline_suite", "task=rt_polarity", f"variant={variant}", "seed=0", "train.progress=off",
        "train.save_adapter=false",
    )  # fmt: skip


@pytest.mark.skipif(not has_optuna(), reason="hydra-optuna-sweeper not installed (the optuna extra)")
def test_lr_search_is_an_optuna_search_over_lr(compose_cfg):
    cfg = compose_cfg("experiment=lr_search")
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.sampler._target_.endswith("TPESampler")
    assert sweeper.direction == "maximize" and sweeper.max_failure_rate == 1.0
    assert dict(sweeper.params) == {"train.lr": "tag(log, interval(1e-5, 1e-2))"}


def test_our_launchers_extend_the_plugins_without_shadowing_them(compose_cfg):
    local = compose_cfg("hydra/launcher=local_parallel").hydra.launcher
    assert local._target_.endswith("JoblibLauncher") and local.n_jobs == 2
    slurm = compose_cfg("hydra/launcher=slurm", "hydra.launcher.partition=gpu").hydra.launcher
    assert slurm._target_.endswith("SlurmLauncher")
    assert (slurm.partition, slurm.gpus_per_node, slurm.timeout_min, slurm.mem_gb) == ("gpu", 1, 240, 32)
    assert slurm.max_num_timeout == 0
    # the plugins' own configs keep their defaults
    assert compose_cfg("hydra/launcher=joblib").hydra.launcher.n_jobs == -1
    assert compose_cfg("hydra/launcher=submitit_slurm").hydra.launcher.gpus_per_node is None
    taken = {"basic", "joblib", "submitit_local", "submitit_slurm"}
    assert not taken & {p.stem for p in (CONF_DIR / "hydra" / "launcher").glob("*.yaml")}


def test_slurm_launcher_renders_a_valid_sbatch_script(tmp_path, monkeypatch, compose_cfg):
    """Our slurm.yaml through submitit, as hydra-submitit-launcher's SlurmLauncher.launch passes it (its
    parameter mapping is copied here); submitit rejects unknown keys. A fake `srun` stands in for SLURM."""
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    (tmp_path / "srun").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    overrides = ["hydra/launcher=slurm", "hydra.launcher.partition=gpu", f"hydra.sweep.dir={tmp_path}"]
    params = OmegaConf.to_container(compose_cfg(*overrides).hydra.launcher, resolve=True)
    params.pop("_target_")
    executor = submitit.AutoExecutor(
        cluster="slurm",
        folder=params.pop("submitit_folder"),
        slurm_max_num_timeout=params.pop("max_num_timeout"),
    )
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
    script = executor._executor._make_submission_file_text("python -m bench train", "uid")
    for line in ["--partition=gpu", "--gpus-per-node=1", "--time=240", "--mem=32GB", "--cpus-per-task=8"]:
        assert f"#SBATCH {line}\n" in script
    assert "--account" not in script and "--qos" not in script  # null: the cluster's default


# ---------------------------------------------------------------- status helpers (fast)


def test_out_of_memory_errors_are_recognised():
    assert runner.is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert runner.is_out_of_memory(MemoryError())
    with pytest.raises(RuntimeError) as e:
        torch.empty(2**60, dtype=torch.uint8)  # more than any address space: the CPU allocator refuses
    assert runner.is_out_of_memory(e.value)
    assert not runner.is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert not runner.is_out_of_memory(ValueError("out of memory"))


# ---------------------------------------------------------------- launchers (slow)


def _check_completed_sweep(results_dir: Path, expected: dict[str, int]) -> Path:
    """One sweep whose run folders are exactly `expected` ({folder: trainable params}), all completed."""
    (sweep_dir,) = sweep_dirs(results_dir)
    metrics = run_metrics(sweep_dir)
    assert set(metrics) == set(expected)
    for folder, m in metrics.items():
        assert m["status"] == "completed" and m["error"] is None, (folder, m["error"])
        assert m["trainable_params"] == expected[folder]
        assert m["sweep"] == str(sweep_dir) and m["run_dir"] == str(sweep_dir / folder)
        assert 0 <= m["best"]["dev/accuracy"] <= 1 and 0 <= m["best"]["test/accuracy"] <= 1
    rows = csv_rows(results_dir)
    assert len(rows) == len(expected)
    by_hash = {r["config_hash"]: r for r in rows}
    assert set(by_hash) == {m["config_hash"] for m in metrics.values()}  # one row per config, all distinct
    for m in metrics.values():
        row = by_hash[m["config_hash"]]
        assert (row["status"], row["run_dir"], row["sweep"]) == ("completed", m["run_dir"], str(sweep_dir))
        assert float(row["score"]) == m["best"]["test/accuracy"]
        assert float(row["dev_score"]) == m["best"]["dev/accuracy"]
    return sweep_dir


@pytest.mark.slow
def test_joblib_sweep_with_two_workers(tmp_path):
    proc = sweep(tmp_path, "hydra/launcher=local_parallel", "variant=lora,vera", "seed=0,1")
    assert "Joblib.Parallel(n_jobs=2" in proc.stdout + proc.stderr
    vera = 4 * (256 + 32) + HEAD_PARAMS  # r 256: lambda_d (256) + lambda_b (32) on 4 layers, plus the head
    lora = lora_params(8)
    _check_completed_sweep(
        tmp_path,
        {
            "0_lora-rt_polarity-s0": lora,
            "1_lora-rt_polarity-s1": lora,
            "2_vera-rt_polarity-s0": vera,
            "3_vera-rt_polarity-s1": vera,
        },
    )


@pytest.mark.slow
def test_submitit_local_sweep(tmp_path):
    sweep(tmp_path, "hydra/launcher=submitit_local", "variant=lora", "seed=0,1")
    sweep_dir = _check_completed_sweep(
        tmp_path, {"0_lora-rt_polarity-s0": lora_params(8), "1_lora-rt_polarity-s1": lora_params(8)}
    )
    # each run was its own submitit job, with its own log folder
    jobs = [p for p in (sweep_dir / ".submitit").iterdir() if p.is_dir() and p.name != "%j"]
    assert len(jobs) == 2
    assert all(list(job.glob("*_result.pkl")) for job in jobs)


@pytest.mark.slow
def test_experiment_grid_runs_and_a_failing_point_does_not_stop_it(tmp_path):
    """experiment=rank_sweep on the tiny model: the grid's ranks 1..64; r=64 > hidden 32 is a config
    error: no run, its traceback in <results>/errors/, counted as failed by the sweep's summary."""
    proc = sweep(tmp_path, "experiment=rank_sweep", "variant=lora", "seed=0", failed=1)
    (sweep_dir,) = sweep_dirs(tmp_path)
    assert sweep_dir.name.endswith("_rank_sweep")
    metrics = run_metrics(sweep_dir)
    ranks = [1, 2, 4, 8, 16, 32]
    assert list(metrics) == [f"{i}_lora-rt_polarity-s0" for i in range(6)]
    for r, m in zip(ranks, metrics.values(), strict=True):
        assert m["model"] == "tiny" and m["status"] == "completed" and m["hparams"]["r"] == r
        assert m["trainable_params"] == lora_params(r)
    log = tmp_path / "errors" / "sweeps" / sweep_dir.name / "6_lora-rt_polarity-s0.txt"
    assert "rank r=64 must be in 1..32" in log.read_text() and str(log) in proc.stderr
    rows = csv_rows(tmp_path)
    assert sorted(r["status"] for r in rows) == ["completed"] * 6  # no failed row for a config error
    assert len({r["config_hash"] for r in rows}) == 6


@pytest.mark.slow
def test_the_basic_sweeper_expands_the_variant_and_task_resolvers(tmp_path):
    """experiment=demo_all sweeps ${peft_bench.variants:}, offline_suite also ${peft_bench.tasks:vader}."""
    # Two config errors, no run: qlora's r=64 does not fit the tiny model's 32-wide layers, and prompt
    # tuning's 20 virtual tokens do not fit beside model.max_length=64 in the tiny model's 64 positions.
    # The sweep goes on.
    demo_all = ["experiment=demo_all", "hydra/launcher=basic", "task.max_train_samples=16"]
    sweep(tmp_path / "demo", *demo_all, failed=2)
    (demo,) = sweep_dirs(tmp_path / "demo")
    runs = run_metrics(demo)
    refused = ("qlora", "prompt_tuning")
    assert [n.split("_", 1)[1] for n in runs] == [
        f"{v}-rt_polarity-s0" for v in ALL_VARIANTS if v not in refused
    ]
    assert all(m["status"] == "completed" for m in runs.values())
    logs = sorted((tmp_path / "demo" / "errors" / "sweeps" / demo.name).iterdir())
    assert sorted(log.name.split("_", 1)[1] for log in logs) == [
        f"{v}-rt_polarity-s0.txt" for v in sorted(refused)
    ]
    prompt_log = next(log for log in logs if "prompt_tuning" in log.name).read_text()
    assert "20 virtual tokens need 84 positions, more than the 64 of model 'tiny'" in prompt_log
    cmd = sweep_cmd("experiment=offline_suite", "variant=head", "seed=0")
    cmd.remove("task=rt_polarity")  # the suite sweeps the tasks
    proc = subprocess.run(cmd, cwd=ROOT, env=bench_env(tmp_path / "suite"), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    (suite,) = sweep_dirs(tmp_path / "suite")
    assert [n.split("_", 1)[1] for n in run_metrics(suite)] == [f"head-{t}-s0" for t in OFFLINE_TASKS]


# ---------------------------------------------------------------- isolation (slow)


@pytest.mark.slow
def test_sweep_records_oom_failed_and_diverged_runs_and_goes_on(tmp_path):
    """hidden 2**40: the embedding cannot be allocated (oom); hidden 30 with 4 heads is refused by the
    checks (failed: a config error, no run); lr 1e20 makes the loss NaN on the second step (diverged);
    hidden 32 with lr 1e-3 completes."""
    proc = sweep(tmp_path, f"model.hidden_size={2**40},30,32", "train.lr=1e-3,1e20", failed=4)
    assert "(failed: 2, oom: 2)" in proc.stderr  # the diverged run is a result of its lr, not a failure
    (sweep_dir,) = sweep_dirs(tmp_path)
    metrics = run_metrics(sweep_dir)
    expected = ["oom", "oom", "completed", "diverged"]
    assert [m["status"] for m in metrics.values()] == expected
    assert [int(name.split("_")[0]) for name in metrics] == [0, 1, 4, 5]
    ms = list(metrics.values())
    for m in ms[:2]:
        assert "DefaultCPUAllocator" in m["error"] and "steps" not in m
        assert m["error"].endswith(f"({runner.OOM_HINT})")  # the switches to try
    for i in range(2):
        assert (sweep_dir / list(metrics)[i] / "error.txt").is_file()
    for i in (2, 3):  # no run: the traceback in <results>/errors/, named by the summary
        (log,) = (tmp_path / "errors" / "sweeps" / sweep_dir.name).glob(f"{i}_*.txt")
        assert "not a multiple of the number of attention heads" in log.read_text()
        assert str(log) in proc.stderr
    assert ms[2]["error"] is None and 0 <= ms[2]["best"]["test/accuracy"] <= 1
    assert ms[3]["error"].startswith("non-finite loss nan at step") and ms[3]["best"] == {}
    assert ms[3]["hparams"]["lr"] == 1e20 and not (sweep_dir / list(metrics)[3] / "error.txt").exists()
    rows = {r["config_hash"]: r for r in csv_rows(tmp_path)}
    assert len(rows) == 4
    for m in ms:
        row = rows[m["config_hash"]]
        assert row["status"] == m["status"] and row["error"] == " ".join((m["error"] or "").split())[:500]
    assert rows[ms[2]["config_hash"]]["score"] != "" and rows[ms[3]["config_hash"]]["score"] == ""


# ---------------------------------------------------------------- resume (slow)


@pytest.mark.slow
def test_resume_after_a_killed_sweep(tmp_path):
    """SIGKILL a sweep once its first run completed; the same command skips the completed runs, runs the
    rest, and the CSV ends with exactly one completed row per config. force=true reruns a completed one."""
    grid = ["task.max_train_samples=64", "train.batch_size=8", "seed=0,1,2,3"]
    kill_once_a_run_completed(tmp_path, grid, "sweeps/*/*/metrics.json")
    (first,) = sweep_dirs(tmp_path)
    before = run_metrics(first)
    completed = {m["config_hash"] for m in before.values() if m["status"] == "completed"}
    assert 1 <= len(completed) < 4 and all(m["status"] == "completed" for m in before.values())
    # the kill may land between a run's metrics.json and its CSV row: the resume below repairs that
    rows_before = csv_rows(tmp_path) if (tmp_path / "runs.csv").exists() else []
    assert {r["config_hash"] for r in rows_before} <= completed

    time.sleep(1.1)  # a new sweep folder (its name has a one-second timestamp)
    proc = sweep(tmp_path, *grid)
    second = next(d for d in sweep_dirs(tmp_path) if d != first)
    rerun = run_metrics(second)
    assert len(rerun) == 4 - len(completed)
    assert all(m["status"] == "completed" for m in rerun.values())
    assert not {m["config_hash"] for m in rerun.values()} & completed
    log = proc.stdout + proc.stderr
    assert all(f"config {h} already completed in" in log for h in completed)
    # a skipped run's folder holds only resumed.json, pointing at the run that completed it
    resumed = {
        json.loads(p.read_text())["config_hash"]: json.loads(p.read_text())["completed_in"]
        for p in second.glob("*/resumed.json")
    }
    assert resumed == {m["config_hash"]: m["run_dir"] for m in before.values()}

    def check_one_completed_row_per_config() -> list[dict]:
        rows = csv_rows(tmp_path)
        assert len(rows) == 4 and all(r["status"] == "completed" for r in rows)
        assert {r["config_hash"] for r in rows} == completed | {m["config_hash"] for m in rerun.values()}
        assert sorted(int(r["seed"]) for r in rows) == [0, 1, 2, 3]
        return rows

    rows = check_one_completed_row_per_config()

    # lose one row on purpose (what a kill between metrics.json and the CSV does): a resume restores it
    path = tmp_path / "runs.csv"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:2] + lines[3:]))
    time.sleep(1.1)
    sweep(tmp_path, *grid)  # all four skipped
    restored = check_one_completed_row_per_config()
    assert sorted(restored, key=lambda r: r["config_hash"]) == sorted(rows, key=lambda r: r["config_hash"])

    time.sleep(1.1)
    sweep(tmp_path, *grid[:-1], "seed=0", "force=true")
    rows = csv_rows(tmp_path)
    assert len(rows) == 5 and all(r["status"] == "completed" for r in rows)
    seed0 = [r for r in rows if r["seed"] == "0"]
    assert len(seed0) == 2 and seed0[0]["config_hash"] == seed0[1]["config_hash"]
    assert seed0[0]["run_dir"] != seed0[1]["run_dir"]
    assert len(sweep_dirs(tmp_path)) == 4


# ---------------------------------------------------------------- Optuna (slow)


def trial_lr(run_dir: Path) -> float:
    """The lr Optuna asked for in a trial, from the run's .hydra/overrides.yaml."""
    overrides = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text())
    (lr,) = [o.split("=", 1)[1] for o in overrides if o.startswith("train.lr=")]
    return float(lr)


@pytest.mark.slow
@pytest.mark.skipif(not has_optuna(), reason="hydra-optuna-sweeper not installed (the optuna extra)")
def test_optuna_lr_search_reports_failed_trials_and_reuses_completed_ones(tmp_path):
    """experiment=lr_search (TPE, seed 0) over lr in {1e-3, 1e20}, 3 trials: lr 1e20 diverges (told to
    Optuna as FAIL, rerun when asked again), lr 1e-3 trains once and is the best. Run again: the 1e-3
    trial is skipped (resume) and still reports its score to Optuna."""
    search = ["experiment=lr_search", "train.lr=choice(1e-3,1e20)", "hydra.sweeper.n_trials=3"]
    proc = sweep(tmp_path, *search)
    (first,) = sweep_dirs(tmp_path)
    assert first.name.endswith("_lr_search")
    trials = sorted(d for d in first.iterdir() if d.is_dir() and not d.name.startswith("."))
    assert len(trials) == 3
    lrs = [trial_lr(d) for d in trials]
    assert set(lrs) == {1e-3, 1e20}, f"TPE seed 0 asked {lrs}; the test needs both values"
    metrics = run_metrics(first)
    done = [m for m in metrics.values() if m["status"] == "completed"]
    assert len(done) == 1 and done[0]["hparams"]["lr"] == 1e-3  # a repeated 1e-3 is skipped, not retrained
    diverged = [m for m in metrics.values() if m["status"] == "diverged"]
    assert len(diverged) == lrs.count(1e20) and all(m["hparams"]["lr"] == 1e20 for m in diverged)
    assert len({m["config_hash"] for m in diverged}) == 1  # the same config, rerun because it never completed
    best = yaml.safe_load((first / "optimization_results.yaml").read_text())
    assert best["best_params"] == {"train.lr": 1e-3}
    assert best["best_value"] == done[0]["best"]["dev/accuracy"]  # tuned on dev, never on test
    log = proc.stdout + proc.stderr
    assert log.count("Return value must be float-castable. Got 'None'") == lrs.count(1e20)  # told as FAIL

    time.sleep(1.1)
    proc = sweep(tmp_path, *search)
    second = next(d for d in sweep_dirs(tmp_path) if d != first)
    assert f"config {done[0]['config_hash']} already completed" in proc.stdout + proc.stderr
    assert {m["status"] for m in run_metrics(second).values()} == {"diverged"}
    best = yaml.safe_load((second / "optimization_results.yaml").read_text())
    assert best["best_params"] == {"train.lr": 1e-3}
    assert best["best_value"] == done[0]["best"]["dev/accuracy"]  # tuned on dev, never on test


# ---------------------------------------------------------------- the tuned comparison


def test_compare_is_one_budget_an_lr_grid_and_seeds_for_every_variant(compose_cfg):
    cfg = compose_cfg("experiment=compare")
    params = cfg.hydra.sweeper.params
    assert params.variant.split(",") == ALL_VARIANTS
    assert params.task.split(",") == [
        "rt_polarity", "tweet_polarity", "amazon_polarity", "nyt_polarity", "snli", "trec", "newsgroups",
        "health_news",
    ]  # fmt: skip
    assert [float(x) for x in params["train.lr_scale"].split(",")] == [4.0, 16.0, 64.0]
    assert params.seed.split(",") == ["0", "1", "2"]
    assert (cfg.select_on, cfg.model.max_length, cfg.train.epochs) == ("dev", 64, 2)
    assert (cfg.task.max_train_samples, cfg.task.max_test_samples, cfg.require_clean_code) == (
        1000,
        2000,
        True,
    )
    budgets = {(compose_cfg("experiment=compare", f"variant={v}").train.batch_size,) for v in ALL_VARIANTS}
    assert budgets == {(32,)}  # no per-variant recipe inside the comparison


@pytest.mark.slow
def test_compare_sweep_resumes_after_a_kill_and_yields_a_tuned_leaderboard(tmp_path):
    """A tiny `-m experiment=compare`: killed once a run completed, the same command finishes it, and
    its leaderboard picks per variant the lr with the best mean dev score, reported on test."""
    grid = [
        "experiment=compare",
        "variant=lora,head",
        "task=rt_polarity",
        "seed=0,1",
        "require_clean_code=false",
    ]
    kill_once_a_run_completed(tmp_path, grid, "compare/*/*/metrics.json")
    done_before = {p.parent.name for p in tmp_path.glob("compare/*/*/metrics.json")}
    sweep(tmp_path, *grid)
    folders = sorted(p.parent for p in tmp_path.glob("compare/rt_polarity/*/metrics.json"))
    assert [f.name for f in folders] == sorted(
        f"{v}-lrx{s}-s{seed}" for v in ("head", "lora") for s in (4.0, 16.0, 64.0) for seed in (0, 1)
    )
    assert any((f / "resumed.json").is_file() for f in folders if f.name in done_before)
    board = (tmp_path / "compare" / "leaderboard.csv").read_text()
    table = list(csv.DictReader(board.splitlines()))
    assert sorted(r["variant"] for r in table) == ["head", "lora"]
    for row in table:
        runs = [
            json.loads((f / "metrics.json").read_text()) for f in folders if f.name.startswith(row["variant"])
        ]
        dev = {}
        for m in runs:
            dev.setdefault(m["hparams"]["lr"], []).append(m["best"]["dev/accuracy"])
        best_lr = max(dev, key=lambda lr: (sum(dev[lr]) / len(dev[lr]), -lr))
        assert float(row["lr"]) == pytest.approx(best_lr)
        tests = [100 * m["best"]["test/accuracy"] for m in runs if m["hparams"]["lr"] == best_lr]
        assert float(row["mean_x100"]) == pytest.approx(sum(tests) / len(tests), abs=1e-3)
        assert (row["grid"], row["n"]) == ("3", "2")


def test_demo_trains_each_variant_at_the_lr_the_committed_comparison_selected(compose_cfg):
    """conf/selected/compare.yaml is what the committed archived comparison selects, and the demo uses it."""
    committed = ROOT / "results" / "archive" / "compare"
    table = tuned_board(runs_table.load(committed), full=True)
    selected = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "selected" / "compare.yaml"))
    assert selected == selection.selected_lrs(table)
    for variant, lr in selected["rt_polarity"].items():
        cfg = compose_cfg("experiment=demo", f"variant={variant}")
        assert cfg.train.lr == lr and cfg.train.lr_scale == 1.0
    missing = [v for v in ALL_VARIANTS if v not in selected["rt_polarity"]]
    for variant in missing[:1]:  # a variant the comparison has not tuned keeps its own lr
        assert compose_cfg("experiment=demo", f"variant={variant}").train.lr is None


def test_selected_lr_resolver_names_the_missing_file():
    with pytest.raises(ValueError, match="no selected lrs 'nope'.*available: compare"):
        selected_lr("nope", "rt_polarity", "lora")
